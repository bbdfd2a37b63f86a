"""The whole review round, end to end, as a reviewer does it (issue 7).

`eai review push` puts four drafts into a real Label Studio; headless Chromium logs in through
the login form, opens the project and clicks *Label All Tasks*, Label Studio's own label stream,
which serves one task after another and moves on after each *Submit*. With real clicks and
typing the reviewer edits the explanation of the first task, picks another emotion on the
second and submits the third as drafted; the fourth is served but left alone. Then
`eai review pull` must give exactly those three outcomes (edited / relabelled / accepted, with
the final emotion and text and the draft each came from, and nothing for the fourth), and
`eai finetune` runs one short step on the pulled pairs with a tiny model and writes a new model
directory whose eai.json lineage names the curated file.

It also checks that the stream serves the most informative draft first (push imports new
tasks by decreasing priority, whatever the order of the drafts file), and that the pages raise
no JavaScript errors. One screenshot per reviewed page goes to test-artifacts/.

Needs the `label-studio` package and Chromium (`bash scripts/setup_browser.sh`); skips without.
2.5 to 3.5 minutes on a busy 2-core machine (load 7), most of it the server's first start
(its database migrations); review in the browser, pull and finetune take about 40 s.
"""

from __future__ import annotations

import json
import shutil
import time

import pytest
from review_support import (
    ARTIFACTS,
    EDITOR_READY,
    LocalLabelStudio,
    Page,
    button_js,
    click,
    log_in,
    make_draft,
    need_label_studio,
    page_errors,
    replace_text,
    start_chromium,
    write_drafts,
)
from typer.testing import CliRunner

from eai.cli import app
from eai.toolkit.review.curated import read_curated

pytestmark = [pytest.mark.labelstudio, pytest.mark.browser]
PROJECT = "End to end"
EDITED = "The steps are short and slow, and the head hangs low the whole time."
TEXTAREA = "document.querySelector('textarea')"


@pytest.fixture(scope="module")
def browser():
    b = start_chromium()
    yield b
    b.close()


@pytest.fixture(scope="module")
def dataset(sample_dataset, tmp_path_factory):
    """A copy of the sample set with an evaluation split (drafts are made for training clips
    only, as `eai draft-explanations --split train` does: finetune refuses test clips)."""
    from eai.toolkit.splits import write_splits

    ds = shutil.copytree(sample_dataset, tmp_path_factory.mktemp("e2e") / "ds")
    write_splits(ds, test_fraction=0.3, seed=0)
    return ds


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One local Label Studio for the module (skips first when the package is missing)."""
    need_label_studio()
    with LocalLabelStudio(tmp_path_factory.mktemp("e2e-ls") / "home") as ls:
        yield ls


@pytest.fixture(scope="module")
def site(server, dataset, tmp_path_factory):
    """Four drafts pushed through the CLI, written least informative first."""
    from eai.toolkit.dataset import load_clips
    from eai.toolkit.splits import split_ids

    train = set(split_ids(dataset, "train"))
    clips, seen = [], set()
    for c in sorted(load_clips(dataset), key=lambda c: c.clip_id):
        if c.clip_id in train and c.emotion not in seen:  # four emotions, four clips
            clips.append(c)
            seen.add(c.emotion)
    assert len(clips) >= 4, "the sample set's training split has too few emotions"
    # confidence 0.8 .. 0.35: priority (1 - confidence) rises down the file, so the most
    # informative draft comes last in the file and must still be served first
    drafts = [make_draft(c, confidence=conf,
                         explanation=f"Draft {n}: the body reads as {c.emotion}; the walk and "
                                     f"the arms match it.")
              for n, (c, conf) in enumerate(zip(clips[:4], (0.8, 0.65, 0.5, 0.35)), 1)]
    tmp = tmp_path_factory.mktemp("e2e-review")
    path = write_drafts(tmp / "drafts.jsonl", drafts)
    r = CliRunner().invoke(app, ["review", "push", str(path), "--dataset", str(dataset),
                                 "--project", PROJECT])
    assert r.exit_code == 0, r.output
    assert "tasks created 4" in r.output, r.output
    from label_studio_sdk import LabelStudio

    client = LabelStudio(base_url=server.info.url, api_key=server.creds.token)
    pid = next(p.id for p in client.projects.list() if p.title == PROJECT)
    tasks = {t.data["clip_id"]: t.id for t in client.tasks.list(project=pid)}
    return {"ls": server, "client": client, "pid": pid, "tmp": tmp, "drafts": drafts,
            "tasks": tasks}


def _draft_on_screen(page: Page, drafts: list, done: tuple = ()):
    """Wait until the editor shows one of `drafts` not reviewed yet (not in `done`) and return
    it: the reviewer knows the task by its drafted text, which the text box holds when it
    opens."""
    texts = [d.explanation for d in drafts if d not in done]
    page.wait(f"{EDITOR_READY} && {json.dumps(texts)}.includes({TEXTAREA}.value)", timeout=90)
    shown = page.eval(f"{TEXTAREA}.value")
    # the reviewer watches the animation before judging: wait until the MP4 plays
    page.wait("(v => v && v.readyState >= 2)(document.querySelector('video'))", timeout=90)
    return next(d for d in drafts if d.explanation == shown)


def _submit(page: Page, site: dict, draft) -> None:
    """Press Submit and wait until Label Studio saved the annotation of the draft's task."""
    task_id = site["tasks"][draft.clip_id]
    click(page, button_js("Submit"))
    deadline = time.monotonic() + 60
    while not site["client"].tasks.get(id=str(task_id)).annotations:
        assert time.monotonic() < deadline, f"task {task_id}: the review was not saved"
        time.sleep(0.3)


def test_review_in_the_label_stream_then_pull_and_finetune(browser, site, dataset, request):
    drafts, ls = site["drafts"], site["ls"]
    page = Page(browser)
    try:
        log_in(page, ls)
        page.goto(f"{ls.info.url}/projects/{site['pid']}/data")
        page.wait(button_js("Label All Tasks"), timeout=90)
        click(page, button_js("Label All Tasks"))
        page.wait("new URLSearchParams(location.search).get('labeling') === '1'", timeout=30)

        # 1st task: the explanation edited in place
        first = _draft_on_screen(page, drafts)
        replace_text(page, TEXTAREA, EDITED)
        page.screenshot(ARTIFACTS / "e2e-1-edited.png")
        _submit(page, site, first)

        # 2nd task: another emotion
        second = _draft_on_screen(page, drafts, done=(first,))
        other = next(d.emotion for d in drafts if d.emotion != second.emotion)
        click(page, f"document.querySelector('input[type=radio][name={other}]')"
                    f".closest('label')")
        page.wait(f"document.querySelector('input[type=radio][name={other}]').checked")
        page.screenshot(ARTIFACTS / "e2e-2-relabelled.png")
        _submit(page, site, second)

        # 3rd task: accepted as drafted
        third = _draft_on_screen(page, drafts, done=(first, second))
        page.screenshot(ARTIFACTS / "e2e-3-accepted.png")
        _submit(page, site, third)

        # the stream moves on to the 4th task, which the reviewer leaves alone
        fourth = _draft_on_screen(page, drafts, done=(first, second, third))
        page.screenshot(ARTIFACTS / "e2e-4-left-alone.png")
        assert page_errors(page) == []
    finally:
        page.send("Page.close")

    # Label Studio's label stream serves the most informative task first: push imported the
    # new tasks by decreasing priority although the file lists them the other way round
    served = [(d.confidence, d.clip_id) for d in (first, second, third, fourth)]
    assert [c for c, _ in served] == [0.35, 0.5, 0.65, 0.8], served

    # -- pull: exactly the three reviews, nothing for the task left alone
    curated = site["tmp"] / "curated.jsonl"
    r = CliRunner().invoke(app, ["review", "pull", "--project", PROJECT, "-o", str(curated)])
    assert r.exit_code == 0, r.output
    assert "3 new" in r.output and "accepted 1, edited 1, relabelled 1" in r.output, r.output
    pairs = {p.clip_id: p for p in read_curated(curated)}
    assert sorted(pairs) == sorted(d.clip_id for d in (first, second, third))
    expected = {first.clip_id: ("edited", first.emotion, EDITED, True),
                second.clip_id: ("relabelled", other, second.explanation, False),
                third.clip_id: ("accepted", third.emotion, third.explanation, False)}
    for draft in (first, second, third):
        pair = pairs[draft.clip_id]
        got = (pair.outcome, pair.emotion, pair.explanation, pair.text_edited)
        assert got == expected[draft.clip_id], (draft.clip_id, got)
        assert pair.trainable and pair.rejected_because is None and not pair.contradiction
        assert (pair.draft["model_version"], pair.draft["emotion"], pair.draft["explanation"]) \
            == (draft.model_version, draft.emotion, draft.explanation)
        assert pair.draft["confidence"] == pytest.approx(draft.confidence)
        assert pair.draft["matched_by"] == "parent_prediction"
        assert pair.reviewer == ls.creds.username
        assert pair.label_studio["task_id"] == site["tasks"][draft.clip_id]
        assert pair.label_studio["project_id"] == site["pid"]

    # -- finetune: one short step on the pulled pairs, a new model that names its data
    from eai.toolkit.model import read_info
    from eai.toolkit.model.files import sha256_file

    # asked for only now: a session fixture would be built before the module's fixtures, so
    # a machine without Chromium or Label Studio would spend half a minute before skipping
    tiny_model_dir = request.getfixturevalue("tiny_model_dir")
    out = site["tmp"] / "eai-tiny-v1"
    r = CliRunner().invoke(app, [
        "finetune", "--model", str(tiny_model_dir), "--dataset", str(dataset),
        "--curated", str(curated), "-o", str(out), "--max-steps", "1", "--align-epochs", "0",
        "--batch-size", "2", "--grad-accum", "1", "--lora-r", "2", "--max-length", "4096",
        "--threads", "1"])
    assert r.exit_code == 0, r.output
    parent, info = read_info(tiny_model_dir), read_info(out)
    assert info.parent_version == parent.model_version and info.version == parent.version + 1
    assert info.metrics["finetune"]["instruction"]["steps"] == 1
    assert info.metrics["finetune"]["alignment"].get("skipped") is True
    counts = info.metrics["finetune"]["counts"]
    assert counts["curated_trainable"] == 3 and counts["examples_curated"] == 3, counts
    assert counts["curated_rejected"] == 0
    (source,) = [s for s in info.training_data[-1]["sources"] if s["kind"] == "curated"]
    assert source["path"] == str(curated.resolve())
    assert source["sha256"] == sha256_file(curated)
    assert info.training_data[-1]["model_version"] == info.model_version
