"""The review loop without a server: drafts -> tasks, annotations -> curated pairs, the
template, the HTML panels, credentials, media paths and the server's port and
environment."""

from __future__ import annotations

import json
import re
import socket
import stat
from html.parser import HTMLParser

import pytest
from review_support import XSS_TEXT
from typer.testing import CliRunner

from eai.toolkit.drafting.draft import Draft
from eai.toolkit.review import credentials as cr
from eai.toolkit.review import mapping as mp
from eai.toolkit.review.curated import CuratedPair, read_curated
from eai.toolkit.review.display import draft_html, evidence_html
from eai.toolkit.review.errors import ReviewError
from eai.toolkit.review.media import local_files_url, media_relpath
from eai.toolkit.review.template import check_config, choices_of, load_template, with_emotions

EVIDENCE = {
    "root_speed_mean": {"value": 1.31, "unit": "m/s", "level": "high"},
    "head_pitch_mean": {"value": -4.2, "unit": "deg", "level": "typical"},
    "arm_expansion": {"value": None, "unit": "1 (per leg length)", "level": None},
    "trunk_lean_mean": {"value": 12.0, "unit": "deg", "level": "low"},
}


def draft(mv="m1", emotion="happy", confidence=0.8, text="Brisk walk, head up.",
          classifier="happy", contradictions=(), created="2026-01-01T00:00:00Z", clip="ds/a"):
    return Draft(clip_id=clip, model_version=mv, emotion=emotion, confidence=confidence,
                 explanation=text, evidence=EVIDENCE, prompt_template="t",
                 classifier={"emotion": classifier, "confidence": 0.7} if classifier else None,
                 faithfulness={"faithful": not contradictions, "checked": 2, "claims": [],
                               "contradictions": list(contradictions)},
                 dataset="ds", action="walk", created_at=created)


SLOW = {"phrase": "moves <i>slowly</i>", "descriptor": "root_speed_mean", "claimed": "low",
        "measured": "high"}


class Tags(HTMLParser):
    """Every start tag and attribute name of an HTML fragment."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [a for a, _ in attrs]


# -- draft -> task --------------------------------------------------------------------------------
def test_prediction_carries_label_text_version_and_score():
    p = mp.draft_prediction(draft(confidence=0.42))
    assert p["model_version"] == "m1" and p["score"] == pytest.approx(0.42)
    by_name = {r["from_name"]: r for r in p["result"]}
    assert by_name["emotion"]["value"] == {"choices": ["happy"]}
    assert by_name["explanation"]["value"] == {"text": ["Brisk walk, head up."]}
    assert {r["to_name"] for r in p["result"]} == {"clip"}


def test_prediction_of_an_unparsed_draft_has_no_label_and_no_score():
    p = mp.draft_prediction(draft(emotion=None, confidence=None, text=""))
    assert p["result"] == [] and "score" not in p


def test_priority_puts_uncertain_disagreeing_and_unfaithful_drafts_first():
    sure = mp.draft_summary(draft(confidence=0.95))
    unsure = mp.draft_summary(draft(confidence=0.35))
    disagree = mp.draft_summary(draft(confidence=0.95, classifier="sad"))
    unfaithful = mp.draft_summary(draft(confidence=0.95, contradictions=[SLOW]))
    worst = mp.draft_summary(draft(confidence=0.3, classifier="sad",
                                   contradictions=[SLOW, SLOW]))
    p = {k: mp.priority(v) for k, v in dict(sure=sure, unsure=unsure, disagree=disagree,
                                             unfaithful=unfaithful, worst=worst).items()}
    assert p["sure"] < p["unsure"] < p["disagree"] < p["worst"]
    assert p["sure"] < p["unfaithful"] < p["worst"]
    assert p["sure"] == pytest.approx(0.05)
    assert mp.priority(mp.draft_summary(draft(emotion=None, confidence=None))) == 2.0


def test_task_data_keeps_every_version_and_the_newest_sets_the_priority():
    old = mp.draft_summary(draft("m1", confidence=0.9, created="2026-01-01T00:00:00Z"))
    new = mp.draft_summary(draft("m2", confidence=0.2, created="2026-02-01T00:00:00Z",
                                 contradictions=[SLOW]))
    data = mp.task_data("ds/a", "ds", "walk", "/data/local-files/?d=x.mp4", 30.0, EVIDENCE,
                        {"m1": old, "m2": new})
    assert data["clip_id"] == "ds/a" and data["fps"] == 30.0
    assert set(data["eai"]["drafts"]) == {"m1", "m2"}
    assert data["priority"] == mp.priority(new)
    assert data["draft_html"].index("m2") < data["draft_html"].index("m1")  # newest first
    # the descriptor the newest draft contradicts is highlighted in the evidence table
    row = re.search(r'<tr style="([^"]*)" data-descriptor="root_speed_mean">',
                    data["evidence_html"])
    assert row and "background" in row.group(1)


def test_every_template_variable_is_in_the_task_data():
    data = mp.task_data("ds/a", "ds", "walk", "/v.mp4", 30.0, EVIDENCE,
                        {"m1": mp.draft_summary(draft())})
    variables = set(re.findall(r'"\$(\w+)"', load_template()))
    assert variables == {"title", "video", "fps", "evidence_html", "draft_html"}
    assert variables <= set(data)


# -- the template ---------------------------------------------------------------------------------
def test_template_has_the_controls_pull_reads():
    config = load_template()
    check_config(config)  # raises when a control is missing
    assert 'frameRate="$fps"' in config and "<Video" in config
    assert re.search(r'<TextArea name="explanation"[^>]*editable="true"[^>]*transcription="true"',
                     config, re.S)
    assert choices_of(config, "flags") == ["contradicts", "reject"]
    assert choices_of(config)[:3] == ["neutral", "happy", "sad"]


def test_with_emotions_replaces_choices_and_escapes_them():
    config = with_emotions(load_template(), ["calm", 'a"b<c>'])
    assert choices_of(config) == ["calm", 'a"b<c>']
    assert "<!--" in config  # the documenting comment survives
    check_config(config)


def test_check_config_refuses_a_foreign_project():
    with pytest.raises(ReviewError, match="explanation"):
        check_config('<View><Text name="clip" value="$t"/>'
                     '<Choices name="emotion" toName="clip"><Choice value="a"/></Choices></View>')


# -- escaping -------------------------------------------------------------------------------------
def test_panels_escape_model_text():
    hostile = {"phrase": XSS_TEXT, "descriptor": "<b>x</b>", "claimed": "low",
               "measured": '"><script>'}
    s = mp.draft_summary(draft(text=XSS_TEXT, contradictions=[hostile], classifier="<i>sad"))
    html = draft_html([s]) + evidence_html({"<script>alert(1)</script>": {
        "value": 1.0, "unit": "<img src=x onerror=alert(1)>", "level": "high"}}, {"<b>x</b>"})
    parsed = Tags(html)
    assert not {"script", "img", "i"} & set(parsed.tags)
    assert not [a for a in parsed.attrs if a.startswith("on")]
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    assert "onerror=&quot;window.__xss=2&quot;" in html


# -- annotation -> curated pair -------------------------------------------------------------------
def result(emotion=None, text=None, rating=None, flags=()):
    out = []
    if emotion:
        out.append({"from_name": "emotion", "to_name": "clip", "type": "choices",
                    "value": {"choices": [emotion]}})
    if text is not None:
        out.append({"from_name": "explanation", "to_name": "clip", "type": "textarea",
                    "value": {"text": [text]}})
    if rating:
        out.append({"from_name": "quality", "to_name": "clip", "type": "rating",
                    "value": {"rating": rating}})
    if flags:
        out.append({"from_name": "flags", "to_name": "clip", "type": "choices",
                    "value": {"choices": list(flags)}})
    return out


def task_with(*preds):
    return {"id": 7, "data": {"clip_id": "ds/a", "dataset": "ds", "action": "walk"},
            "predictions": [{"id": i + 1, "model_version": mv, "score": sc,
                             "created_at": f"2026-01-0{i + 1}T00:00:00Z",
                             "result": result(emo, txt)}
                            for i, (mv, sc, emo, txt) in enumerate(preds)]}


TASK = task_with(("m1", 0.8, "happy", "Brisk walk, head up."),
                 ("m2", 0.6, "sad", "Slow steps, head low."))


def pair(res, parent=1, cancelled=False, **kw):
    ann = {"id": 31, "result": res, "parent_prediction": parent, "was_cancelled": cancelled,
           "completed_by": 2, "lead_time": 12.34567, "created_at": "2026-03-01T10:00:00Z",
           "updated_at": "2026-03-01T10:05:00.123456+00:00"}
    return mp.annotation_to_pair(TASK, ann, url="http://x", project="P", project_id=3,
                                 reviewers={2: "ann@lab.org"}, **kw)


@pytest.mark.parametrize(("res", "kw", "outcome", "because"), [
    (result("happy", "Brisk walk, head up.", 5), {}, "accepted", None),
    (result("happy", "  Brisk walk,\n head up. "), {}, "accepted", None),  # whitespace only
    (result("happy", "Brisk walk; the head is held high."), {}, "edited", None),
    (result("angry", "Brisk walk, head up."), {}, "relabelled", None),
    (result("angry", "Stomping, fists closed."), {}, "relabelled", None),
    (result("happy", "Brisk walk, head up.", flags=["reject"]), {}, "rejected", "marked_reject"),
    (result("happy", "Brisk walk, head up.", flags=["contradicts"]), {}, "rejected",
     "contradiction_not_fixed"),
    (result("happy", "Slow walk, head up.", flags=["contradicts"]), {}, "edited", None),
    (result(None, "Brisk walk."), {}, "rejected", "no_emotion"),
    (result("happy", ""), {}, "rejected", "empty_explanation"),
    ([], {"cancelled": True}, "rejected", "skipped"),
])
def test_outcomes(res, kw, outcome, because):
    p = pair(res, **kw)
    assert (p.outcome, p.rejected_because) == (outcome, because)
    assert p.trainable == (outcome != "rejected")


def test_pair_fields():
    p = pair(result("angry", "Stomping.", 2, ["contradicts"]))
    assert p.clip_id == "ds/a" and p.emotion == "angry" and p.explanation == "Stomping."
    assert p.draft == {"model_version": "m1", "emotion": "happy",
                       "explanation": "Brisk walk, head up.", "confidence": 0.8,
                       "prediction_id": 1, "matched_by": "parent_prediction"}
    assert p.reviewer == "ann@lab.org" and p.rating == 2 and p.contradiction
    assert p.lead_time_s == 12.346 and p.text_edited
    assert p.label_studio == {"url": "http://x", "project": "P", "project_id": 3,
                              "task_id": 7, "annotation_id": 31}
    assert p.updated_at == "2026-03-01T10:05:00.123456Z" and p.dataset == "ds"


def test_the_draft_compared_with_is_the_parent_prediction_else_the_projects_version():
    # edited against m2's draft (its parent), accepted would be wrong
    assert pair(result("sad", "Slow steps, head low."), parent=2).outcome == "accepted"
    assert pair(result("sad", "Slow steps, head low."), parent=1).outcome == "relabelled"
    p = pair(result("sad", "Slow steps, head low."), parent=None,
             preferred_model_version="m2")
    assert (p.outcome, p.draft["matched_by"]) == ("accepted", "project_model_version")
    p = pair(result("sad", "Slow steps, head low."), parent=None)
    assert (p.draft["model_version"], p.draft["matched_by"]) == ("m2", "newest")


def test_reviewer_inlined_by_the_api():
    ann = {"id": 1, "result": result("happy", "x"), "completed_by": {"id": 5, "email": "b@c.d"},
           "updated_at": "2026-01-01T00:00:00Z"}
    p = mp.annotation_to_pair(TASK, ann, url="u", project="P", project_id=1)
    assert p.reviewer == "b@c.d"


def test_curated_line_round_trip_and_errors(tmp_path):
    p = pair(result("happy", "Brisk walk; the head is held high."))
    line = p.to_json()
    assert list(json.loads(line))[:5] == ["curated_version", "clip_id", "outcome", "emotion",
                                          "explanation"]
    path = tmp_path / "c.jsonl"
    path.write_text(line + "\n" + '{"curated_version": 1, "clip_id": "x"}\n')
    with pytest.raises(ValueError, match=r"c\.jsonl, line 2"):
        read_curated(path)
    path.write_text(line + "\n")
    assert read_curated(path) == [p]
    with pytest.raises(ValueError, match="outcome must be one of"):
        CuratedPair(**{**p.to_dict(), "outcome": "approved"})


# -- credentials, media, the server's port and environment ----------------------------------------
def test_credentials_are_generated_once_and_private(tmp_path, monkeypatch):
    for v in cr.ENV.values():
        monkeypatch.delenv(v, raising=False)
    path = tmp_path / "ls" / "credentials.json"
    c, created = cr.ensure_credentials(path)
    assert created and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(c.token) == 40 and c.username == cr.DEFAULT_USERNAME
    assert cr.ensure_credentials(path) == (c, False)
    assert c.token not in repr(c) and c.password not in repr(c)
    assert cr.mask(c.token) == f"{c.token[:4]}…(40 chars)"
    path.chmod(0o644)
    with pytest.raises(ReviewError, match="chmod 600"):
        cr.load_credentials(path)


def test_credentials_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EAI_LS_USERNAME", "ann@lab.org")
    monkeypatch.setenv("EAI_LS_PASSWORD", "correct horse battery")
    monkeypatch.setenv("EAI_LS_TOKEN", "a" * 40)
    c, _ = cr.ensure_credentials(tmp_path / "c.json")
    assert (c.username, c.password, c.token) == ("ann@lab.org", "correct horse battery", "a" * 40)
    monkeypatch.setenv("EAI_LS_TOKEN", "b" * 40)
    assert cr.env_mismatch(c) == ["EAI_LS_TOKEN"]
    monkeypatch.setenv("EAI_LS_TOKEN", "short")
    with pytest.raises(ReviewError, match="at least 20") as e:
        cr.ensure_credentials(tmp_path / "d.json")
    assert "short" not in str(e.value)


def test_media_paths_are_safe_and_distinct():
    assert str(media_relpath("bandai/dataset-1/angry_walk_01")) == \
        "eai-media/r1/bandai/dataset-1/angry_walk_01.mp4"
    odd = media_relpath("../x y/../../etc/passwd")
    assert ".." not in odd.parts and odd.parts[:2] == ("eai-media", "r1")
    assert media_relpath("ds/a b") != media_relpath("ds/a_b")
    assert local_files_url(media_relpath("ds/a b")).startswith(
        "/data/local-files/?d=eai-media/r1/ds/a_b-")


def test_free_port_skips_a_busy_one():
    from eai.toolkit.review.server import find_free_port, port_free

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        assert not port_free(busy)
        assert find_free_port(busy) > busy


def test_child_environment_scrubs_stray_variables(tmp_path, monkeypatch):
    from eai.toolkit.review.server import ServerPaths, _child_env

    for k, v in {"PORT": "9999", "USERNAME": "mallory", "LABEL_STUDIO_HOST": "x",
                 "HEARTEX_PORT": "1"}.items():
        monkeypatch.setenv(k, v)
    env = _child_env(ServerPaths(tmp_path), cr.Credentials("a@b.c", "p" * 10, "t" * 40))
    assert "PORT" not in env and "USERNAME" not in env and "HEARTEX_PORT" not in env
    assert "LABEL_STUDIO_HOST" not in env and env["HOME"] == str(tmp_path / "home")
    assert env["LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN"] == "true"
    assert env["LOCAL_FILES_DOCUMENT_ROOT"] == str(tmp_path / "files")
    assert env["COLLECT_ANALYTICS"] == "false" and env["LATEST_VERSION_CHECK"] == "false"


def test_log_lines_that_reveal_the_port():
    from eai.toolkit.review.server import _MOVED, _SERVING

    log = ("\n*** WARNING! ***\n* Port 8080 is in use.\n* Trying to start at 8081\n"
           "Starting development server at http://127.0.0.1:8081/\n")
    assert _MOVED.findall(log) == ["8081"] and _SERVING.findall(log) == ["8081"]


# -- the commands without a server ----------------------------------------------------------------
def test_commands_say_when_no_server_runs(tmp_path, monkeypatch):
    from eai.cli import app

    monkeypatch.setenv("EAI_HOME", str(tmp_path))
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    r = CliRunner().invoke(app, ["review", "pull", "--project", "P", "-o", str(tmp_path / "c")])
    assert r.exit_code == 1 and "eai review server start" in r.output
    r = CliRunner().invoke(app, ["review", "server", "status"])
    assert r.exit_code == 1 and "not running" in r.output
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    r = CliRunner().invoke(app, ["review", "status", "--project", "P"])
    assert r.exit_code == 1 and "LABEL_STUDIO_API_KEY" in r.output
