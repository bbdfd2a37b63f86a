"""The review loop against a real Label Studio started for this module (about 1.5 minutes:
the first start migrates a new database, and 20 clips are rendered).

Reviewers are played through the API the way the web page saves their work: an annotation
that starts from the task's prediction (parent_prediction), with the prediction's result as
they left it or changed.
"""

from __future__ import annotations

import json
import stat

import pytest
import requests
from review_support import (
    LocalLabelStudio,
    listens_on,
    make_draft,
    need_label_studio,
    review_dataset,
    write_drafts,
)
from typer.testing import CliRunner

from eai.cli import app
from eai.toolkit.review.curated import read_curated
from eai.toolkit.review.mapping import draft_summary, prediction_result, priority

pytestmark = pytest.mark.labelstudio
V1, V2 = "eai-test-1", "eai-test-2"
PROJECT = "Emotion review (test)"


@pytest.fixture(scope="module")
def ls(tmp_path_factory):
    need_label_studio()
    with LocalLabelStudio(tmp_path_factory.mktemp("eai-home")) as server:
        yield server


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return review_dataset(tmp_path_factory.mktemp("review-data"))


@pytest.fixture(scope="module")
def clips(dataset):
    from eai.toolkit.dataset import load_clips

    return sorted(load_clips(dataset), key=lambda c: c.clip_id)


def eai(*args: str, code: int = 0) -> str:
    r = CliRunner().invoke(app, [str(a) for a in args])
    out = " ".join(r.output.split())  # rich wraps long lines
    assert r.exit_code == code, out
    return out


def sdk(server):
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=server.info.url, api_key=server.creds.token)


def tasks_of(client, project_id, **kw):
    return [t.model_dump(mode="json") for t in
            client.tasks.list(project=project_id, fields="all", page_size=500, **kw)]


def project_id(client, title=PROJECT):
    return next(p.id for p in client.projects.list() if p.title == title)


def v1_drafts(clips):
    """Confidence rising with the index; every 5th disagrees with the classifier, every 7th
    (from 3) contradicts the motion; the explanation of clip 2 is hostile HTML."""
    out = []
    for i, c in enumerate(clips):
        contra = ([{"phrase": "walks <b>slowly</b>", "descriptor": "root_speed_mean",
                    "claimed": "low", "measured": "high"}] if i % 7 == 3 else None)
        out.append(make_draft(c, V1, confidence=round(0.3 + 0.03 * i, 2),
                              classifier="neutral" if i % 5 == 0 else None,
                              contradictions=contra,
                              explanation=('<img src=x onerror="alert(1)"> moves' if i == 2
                                           else None)))
    return out


def test_server_runs_as_our_account(ls):
    from eai.toolkit.review import server
    from eai.toolkit.review.errors import ReviewError

    assert server.running(ls.paths) == ls.info
    assert server.start(paths=ls.paths) == (ls.info, False)  # a second start finds it
    assert stat.S_IMODE(ls.paths.credentials.stat().st_mode) == 0o600
    me = server.whoami(ls.info.url, ls.creds.token)
    assert me["email"] == ls.creds.username
    assert server.whoami(ls.info.url, "0" * 40) is None  # another token is not us
    out = eai("review", "server", "status")
    assert f"running at {ls.info.url}" in out
    out = eai("review", "server", "start")
    assert "already running" in out and ls.creds.token[:4] + "…(40 chars)" in out
    assert ls.creds.token not in out and ls.creds.password not in out
    with pytest.raises(ReviewError, match="in use"):  # an explicit busy port is refused
        server.start(port=ls.info.port, paths=server.ServerPaths(ls.home / "other"))


def test_a_port_taken_meanwhile_is_detected(ls, tmp_path, monkeypatch):
    """Label Studio moves to the next port when its own is busy, silently. A second server
    (a copy of the first's database, so it starts in seconds and even knows the same token)
    is sent to the first one's port: the move must be noticed and the new port recorded."""
    import shutil
    import sqlite3

    from eai.toolkit.review import server

    other = server.ServerPaths(tmp_path / "ls2")
    other.data.mkdir(parents=True)
    with sqlite3.connect(ls.paths.data / "label_studio.sqlite3") as src, \
            sqlite3.connect(other.data / "label_studio.sqlite3") as dst:
        src.backup(dst)
    shutil.copy2(ls.paths.credentials, other.credentials)
    monkeypatch.setattr(server, "find_free_port", lambda start: ls.info.port)  # looked free
    info, started = server.start(paths=other)
    try:
        assert started and info.port != ls.info.port and info.pid != ls.info.pid
        assert f"Trying to start at {info.port}" in other.log.read_text()
        assert server.running(other) == info
        assert listens_on(info.pid, info.port) in (True, None)  # the process we started
        assert listens_on(ls.info.pid, info.port) in (False, None)
    finally:
        assert server.stop(other) == info
    assert server.running(ls.paths) == ls.info


def test_push_review_pull(ls, dataset, clips, tmp_path):
    client = sdk(ls)
    drafts = write_drafts(tmp_path / "drafts.jsonl", v1_drafts(clips))
    out = eai("review", "push", drafts, "--dataset", dataset, "--project", PROJECT)
    assert "tasks created 20, predictions added 20" in out and "rendered 20" in out
    pid = project_id(client)
    tasks = tasks_of(client, pid)
    assert len(tasks) == 20 and {t["data"]["clip_id"] for t in tasks} == {c.clip_id for c in clips}
    by_clip = {t["data"]["clip_id"]: t for t in tasks}
    for i, c in enumerate(clips):
        (pred,) = by_clip[c.clip_id]["predictions"]
        assert pred["model_version"] == V1 and pred["score"] == pytest.approx(0.3 + 0.03 * i)
    # most informative first: imported in priority order
    by_id = sorted(tasks, key=lambda t: t["id"])
    prios = [t["data"]["priority"] for t in by_id]
    assert prios == sorted(prios, reverse=True) and prios[0] > prios[-1]
    assert client.projects.get(id=pid).model_version == V1
    # the render is served to the reviewer, and only to logged-in users
    video = ls.info.url + by_id[0]["data"]["video"]
    r = requests.get(video, headers={"Authorization": f"Token {ls.creds.token}"}, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"] == "video/mp4"
    assert len(r.content) > 1000
    assert requests.get(video, timeout=30).status_code in (401, 403, 404)
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in by_clip[clips[2].clip_id][
        "data"]["draft_html"]

    # -- reviewers at work --------------------------------------------------------------------
    second = client.users.create(email="second@eai.local", username="second",
                                 password="second-reviewer-pw")
    expected = {}  # annotation id -> (outcome, rejected_because, reviewer)

    def review(i, emotion=None, text=None, rating=None, flags=(), cancelled=False, user=None,
               outcome=None, because=None):
        task = by_clip[clips[i].clip_id]
        pred = task["predictions"][0]
        draft = {r["from_name"]: r["value"] for r in pred["result"]}
        res = prediction_result(emotion or draft["emotion"]["choices"][0],
                                draft["explanation"]["text"][0] if text is None else text)
        if rating:
            res.append({"from_name": "quality", "to_name": "clip", "type": "rating",
                        "value": {"rating": rating}})
        if flags:
            res.append({"from_name": "flags", "to_name": "clip", "type": "choices",
                        "value": {"choices": list(flags)}})
        by = {"completed_by": user} if user else {}
        a = client.annotations.create(id=task["id"], result=[] if cancelled else res,
                                      parent_prediction=pred["id"], was_cancelled=cancelled,
                                      lead_time=10.0 + i, **by)
        expected[a.id] = (outcome, because, "second@eai.local" if user else ls.creds.username)
        return a

    for i in range(5):
        review(i, rating=5, outcome="accepted")
    for i in range(5, 9):
        review(i, text=f"Edited by a reviewer: the steps of clip {i} are short.", rating=3,
               outcome="edited")
    for i in range(9, 13):
        other = "fearful" if clips[i].emotion != "fearful" else "sad"
        review(i, emotion=other, text="Hunched and hurried." if i == 12 else None,
               outcome="relabelled")
    review(13, flags=["reject"], rating=1, outcome="rejected", because="marked_reject")
    review(14, cancelled=True, outcome="rejected", because="skipped")
    review(15, flags=["contradicts"], rating=2, outcome="rejected",
           because="contradiction_not_fixed")
    # tasks 16-19 stay without annotation; a second reviewer agrees on 0 and not on 9
    review(0, user=second.id, outcome="accepted")
    review(9, user=second.id, outcome="accepted")

    out_file = tmp_path / "curated.jsonl"
    out = eai("review", "pull", "--project", PROJECT, "-o", out_file)
    assert "18 new, 0 updated, 0 unchanged (18 lines)" in out
    pairs = read_curated(out_file)
    got = {p.annotation_id: (p.outcome, p.rejected_because, p.reviewer) for p in pairs}
    assert got == expected
    for p in pairs:
        i = next(k for k, c in enumerate(clips) if c.clip_id == p.clip_id)
        assert p.draft["model_version"] == V1 and p.draft["matched_by"] == "parent_prediction"
        assert p.draft["confidence"] == pytest.approx(0.3 + 0.03 * i)
        assert p.label_studio["project_id"] == pid and p.lead_time_s == pytest.approx(10.0 + i)
        assert p.label_studio["task_id"] == by_clip[p.clip_id]["id"]
        assert p.contradiction == (i == 15)
        if p.outcome == "edited":
            assert p.explanation.startswith("Edited by a reviewer") and p.rating == 3
        if p.outcome == "relabelled" and p.reviewer == ls.creds.username:
            assert p.emotion != p.draft["emotion"] and p.text_edited == (i == 12)
    assert not {c.clip_id for c in clips[16:]} & {p.clip_id for p in pairs}

    # -- incremental: nothing new, then one changed annotation replaces its line ----------------
    before = out_file.read_bytes()
    assert "0 new, 0 updated, 18 unchanged" in eai("review", "pull", "--project", PROJECT,
                                                   "-o", out_file)
    assert out_file.read_bytes() == before
    first = min(a for a, v in expected.items() if v[0] == "accepted")
    task = next(t for t in tasks if any(p.label_studio["task_id"] == t["id"] and
                                        p.annotation_id == first for p in pairs))
    changed = prediction_result(task["predictions"][0]["result"][0]["value"]["choices"][0],
                                "Changed my mind: the arms swing wide.")
    client.annotations.update(id=first, result=changed)
    assert "0 new, 1 updated, 17 unchanged (18 lines)" in eai("review", "pull", "--project",
                                                              PROJECT, "-o", out_file)
    pairs = read_curated(out_file)
    assert len({p.annotation_id for p in pairs}) == len(pairs) == 18
    assert next(p for p in pairs if p.annotation_id == first).outcome == "edited"

    # -- pushing again creates nothing ----------------------------------------------------------
    out = eai("review", "push", drafts, "--dataset", dataset, "--project", PROJECT)
    assert "tasks created 0, predictions added 0, tasks updated 0, already there 20" in out
    assert "rendered 0 (cached 20)" in out
    tasks = tasks_of(client, pid)
    assert len(tasks) == 20 and sum(len(t["predictions"]) for t in tasks) == 20

    # -- a new model version adds predictions to the same tasks and reorders them ---------------
    v2 = [make_draft(c, V2, confidence=0.9 if i < 15 else 0.1, classifier="angry" if i == 19
                     else None, created_at="2026-02-01T00:00:00Z")
          for i, c in enumerate(clips) if i % 2 == 1]
    drafts2 = write_drafts(tmp_path / "drafts-v2.jsonl", v2)
    out = eai("review", "push", drafts2, "--dataset", dataset, "--project", PROJECT)
    assert "tasks created 0, predictions added 10, tasks updated 10, already there 0" in out
    assert "tasks created 0, predictions added 0" in eai(
        "review", "push", drafts2, "--dataset", dataset, "--project", PROJECT)
    tasks = tasks_of(client, pid)
    assert len(tasks) == 20
    versions = {t["data"]["clip_id"]: sorted(p["model_version"] for p in t["predictions"])
                for t in tasks}
    assert versions == {c.clip_id: [V1, V2] if i % 2 else [V1] for i, c in enumerate(clips)}
    assert client.projects.get(id=pid).model_version == V2
    assert set(by_clip_now(tasks)[clips[19].clip_id]["data"]["eai"]["drafts"]) == {V1, V2}
    view = next(v for v in client.views.list(project=pid)
                if v.model_dump()["data"]["title"] == "Most informative first")
    in_view = tasks_of(client, pid, view=view.id)
    prios = [t["data"]["priority"] for t in in_view]
    assert prios == sorted(prios, reverse=True)
    newest = {**{d.clip_id: d for d in v1_drafts(clips)}, **{d.clip_id: d for d in v2}}
    assert {t["data"]["clip_id"]: t["data"]["priority"] for t in in_view} == {
        k: priority(draft_summary(d)) for k, d in newest.items()}
    # clip 19 rose from 0.13 (v1: sure, agreeing) to 1.9 (v2: unsure, disagreeing)
    assert by_clip_now(in_view)[clips[19].clip_id]["data"]["priority"] == 1.9
    assert [t["id"] for t in in_view] != sorted(t["id"] for t in in_view)

    # a review of the new version's draft: one new line that names it
    t17 = by_clip_now(tasks)[clips[17].clip_id]
    p2 = next(p for p in t17["predictions"] if p["model_version"] == V2)
    client.annotations.create(id=t17["id"], result=p2["result"], parent_prediction=p2["id"],
                              lead_time=4.0)
    assert "1 new, 0 updated, 18 unchanged (19 lines)" in eai("review", "pull", "--project",
                                                              PROJECT, "-o", out_file)
    last = read_curated(out_file)[-1]
    assert (last.clip_id, last.outcome, last.draft["model_version"]) == (clips[17].clip_id,
                                                                          "accepted", V2)

    # -- status and a full rebuild --------------------------------------------------------------
    from eai.toolkit.review.connection import connect
    from eai.toolkit.review.status import review_status

    st = review_status(PROJECT, connect())
    outcomes = [p.outcome for p in read_curated(out_file)]
    assert (st.tasks, st.reviewed, st.annotations) == (20, 17, 19)
    assert dict(st.outcomes) == {o: outcomes.count(o) for o in set(outcomes)}
    assert st.predictions == {V1: 20, V2: 10}
    assert (st.multi_reviewed, st.agreement, st.full_agreement) == (2, 0.5, 1)
    out = eai("review", "status", "--project", PROJECT)
    assert "emotion agreement" in out and "50% (all agree on 1 of 2)" in out
    rebuilt = tmp_path / "rebuilt.jsonl"
    eai("review", "pull", "--project", PROJECT, "-o", rebuilt)
    eai("review", "pull", "--project", PROJECT, "-o", out_file, "--all")
    assert sorted(out_file.read_text().splitlines()) == sorted(rebuilt.read_text().splitlines())
    state = json.loads((tmp_path / "curated.jsonl.state.json").read_text())
    assert len(state["annotations"]) == 19 and state["project_id"] == pid
    assert ls.creds.token not in ls.paths.log.read_text()


def by_clip_now(tasks):
    return {t["data"]["clip_id"]: t for t in tasks}


def test_a_draft_of_an_unknown_clip_is_reported_and_the_rest_pushed(ls, dataset, clips,
                                                                      tmp_path):
    drafts = [make_draft(clips[0], V1), make_draft(clips[1], V1)]
    drafts[0].clip_id = "nowhere/clip-7"
    path = write_drafts(tmp_path / "d.jsonl", drafts)
    out = eai("review", "push", path, "--dataset", dataset, "--project", "Unknown clips")
    assert "draft 1: clip 'nowhere/clip-7' is not in dataset" in out
    assert "tasks created 1, predictions added 1" in out


def test_an_existing_label_studio_by_url_and_token(ls, dataset, clips, tmp_path, monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_URL", ls.info.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", ls.creds.token)
    path = write_drafts(tmp_path / "d.jsonl", [make_draft(c, V1) for c in clips[:2]])
    out = eai("review", "push", path, "--dataset", dataset, "--project", "By URL", code=1)
    assert "--media-root" in out  # another server's files are not ours to place
    out = eai("review", "push", path, "--dataset", dataset, "--project", "By URL",
              "--media-root", ls.paths.files)
    assert "tasks created 2, predictions added 2" in out
    token_file = tmp_path / "token"
    token_file.write_text("f" * 40 + "\n")
    out = eai("review", "status", "--project", "By URL", "--token-file", token_file, code=1)
    assert "refused the API token ffff…(40 chars)" in out and "f" * 40 not in out
