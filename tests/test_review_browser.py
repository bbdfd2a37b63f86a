"""A reviewer's view: headless Chromium logs in to a real Label Studio, opens task pages and
reviews one with real mouse clicks and typing. Screenshots go to test-artifacts/.

Needs the `label-studio` package and Chromium (`bash scripts/setup_browser.sh`); about a
minute (the server's first start is most of it).
"""

from __future__ import annotations

import base64
import time

import pytest
from review_support import (
    ARTIFACTS,
    EDITOR_READY,
    XSS_TEXT,
    Chromium,
    LocalLabelStudio,
    Page,
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
PROJECT = "Browser review"
EDITED = "The steps are short and the head hangs low."


@pytest.fixture(scope="module")
def browser():
    b = start_chromium()
    yield b
    b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory, sample_dataset):
    """A server with two pushed drafts: an ordinary one and a hostile one."""
    need_label_studio()
    from eai.toolkit.dataset import load_clips

    clips = sorted(load_clips(sample_dataset), key=lambda c: c.clip_id)
    plain = make_draft(clips[0], confidence=0.55)
    hostile = make_draft(clips[1], confidence=0.4, explanation=XSS_TEXT, contradictions=[
        {"phrase": XSS_TEXT, "descriptor": "root_speed_mean", "claimed": "low",
         "measured": "high"}])
    tmp = tmp_path_factory.mktemp("browser")
    with LocalLabelStudio(tmp / "home") as ls:
        path = write_drafts(tmp / "drafts.jsonl", [plain, hostile])
        r = CliRunner().invoke(app, ["review", "push", str(path), "--dataset",
                                     str(sample_dataset), "--project", PROJECT])
        assert r.exit_code == 0, r.output
        from label_studio_sdk import LabelStudio

        client = LabelStudio(base_url=ls.info.url, api_key=ls.creds.token)
        pid = next(p.id for p in client.projects.list() if p.title == PROJECT)
        tasks = {t.data["clip_id"]: t.id for t in client.tasks.list(project=pid)}
        yield {"ls": ls, "client": client, "pid": pid, "tmp": tmp, "clips": clips,
               "plain": (plain, tasks[plain.clip_id]), "hostile": (hostile, tasks[hostile.clip_id])}


def open_task(browser: Chromium, site: dict, task_id: int) -> Page:
    """A new tab, logged in through the login form, on the task's labeling page."""
    ls, page = site["ls"], Page(browser)
    log_in(page, ls)
    page.goto(f"{ls.info.url}/projects/{site['pid']}/data?task={task_id}")
    page.wait(EDITOR_READY, timeout=90)
    return page


VISIBLE = """(el => { if (!el) return false; const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && r.top >= 0 && r.bottom <= innerHeight &&
           s.visibility === 'visible' && s.display !== 'none' && +s.opacity > 0; })"""


def canvas_picture(page: Page, element_js: str) -> bytes:
    """A PNG of the element's area of the screen."""
    r = page.eval(f"(el => {{ el.scrollIntoView({{block: 'center'}}); "
                  f"const r = el.getBoundingClientRect(); "
                  f"return {{x: r.x, y: r.y, width: r.width, height: r.height}}; }})({element_js})")
    shot = page.send("Page.captureScreenshot", {"format": "png", "clip": {**r, "scale": 1}})
    return base64.b64decode(shot["data"])


def test_task_page_shows_the_review_and_saves_it(browser, site):
    draft, task_id = site["plain"]
    page = open_task(browser, site, task_id)
    try:
        # the MP4 loads in the background: on a busy machine that can take a while
        page.wait("(v => v && v.readyState >= 2)(document.querySelector('video'))", timeout=60)
        video = page.eval("""(() => { const v = document.querySelector('video');
            return {state: v.readyState, duration: v.duration, width: v.videoWidth,
                    src: v.currentSrc}; })()""")
        clip = next(c for c in site["clips"] if c.clip_id == draft.clip_id)
        assert video["state"] >= 2 and video["width"] == 640, video
        assert video["duration"] == pytest.approx(clip.num_frames / clip.fps, abs=0.2)
        assert "/data/local-files/?d=eai-media/" in video["src"]
        # the player counts the clip's own frames (frameRate="$fps"; its default is 24)
        page.wait(f"document.body.innerText.includes('of {clip.num_frames}')", timeout=15)
        # Label Studio draws the playing video into a canvas: it must change while playing
        screen = "[...document.querySelectorAll('canvas')].find(c => c.width >= 320)"
        before = canvas_picture(page, screen)
        played = page.eval("""(async () => { const v = document.querySelector('video');
            await v.play(); const t0 = performance.now();
            while (v.currentTime < 1.0 && performance.now() - t0 < 5000)
                await new Promise(r => setTimeout(r, 100));
            v.pause(); return v.currentTime; })()""")
        assert played >= 1.0  # the animation really plays
        time.sleep(0.3)
        assert canvas_picture(page, screen) != before, "the picture did not change"
        rows = page.eval("document.querySelector('table.eai-evidence').rows.length")
        assert rows == 1 + len(draft.evidence)
        checked = page.eval("[...document.querySelectorAll('input[type=radio]:checked')]"
                            ".map(i => i.name)")
        assert draft.emotion in checked
        box = page.eval("""(() => { const t = document.querySelector('textarea');
            return [t.value, t.readOnly || t.disabled]; })()""")
        assert box == [draft.explanation, False]
        for what in (screen, "document.querySelector('table.eai-evidence')",
                     f"document.querySelector('input[type=radio][name={draft.emotion}]')"
                     ".closest('label')", "document.querySelector('textarea')"):
            assert page.eval(f"{VISIBLE}({what})"), (what, page.eval(
                f"(el => {{ const r = el.getBoundingClientRect(), s = getComputedStyle(el); "
                f"return [r.top, r.bottom, r.width, r.height, innerHeight, s.visibility, "
                f"s.display, s.opacity]; }})({what})"))
        page.screenshot(ARTIFACTS / "review-task.png")
        assert page_errors(page) == []

        # a person reviews: another emotion, a corrected text, the flag, four stars, Submit
        other = next(c for c in ("sad", "angry", "happy") if c != draft.emotion)
        click(page, f"document.querySelector('input[type=radio][name={other}]').closest('label')")
        replace_text(page, "document.querySelector('textarea')", EDITED)
        click(page, "[...document.querySelectorAll('label')]"
                    ".find(l => l.textContent.includes('contradicts the motion'))")
        click(page, "document.querySelectorAll('.ant-rate-star')[3].firstElementChild")
        click(page, "[...document.querySelectorAll('button')]"
                    ".find(b => b.textContent.trim() === 'Submit')")
        deadline = time.monotonic() + 30
        while not site["client"].tasks.get(id=str(task_id)).annotations:
            assert time.monotonic() < deadline, "the review was not saved"
            time.sleep(0.5)
        assert page_errors(page) == []
    finally:
        page.send("Page.close")
    out = site["tmp"] / "curated.jsonl"
    r = CliRunner().invoke(app, ["review", "pull", "--project", PROJECT, "-o", str(out)])
    assert r.exit_code == 0, r.output
    (pair,) = read_curated(out)
    assert (pair.outcome, pair.emotion, pair.explanation) == ("relabelled", other, EDITED)
    assert pair.contradiction and pair.rating == 4 and pair.text_edited
    assert pair.draft["explanation"] == draft.explanation
    assert pair.draft["matched_by"] == "parent_prediction"
    assert pair.reviewer == site["ls"].creds.username and pair.lead_time_s > 0


def test_hostile_draft_is_shown_as_text(browser, site):
    draft, task_id = site["hostile"]
    page = open_task(browser, site, task_id)
    try:
        time.sleep(1.5)  # time for an injected handler to have run
        assert page.eval("typeof window.__xss") == "undefined"
        assert page.eval("document.querySelector('textarea').value") == XSS_TEXT
        shown = page.eval("[...document.querySelectorAll('.eai-original')]"
                          ".map(e => e.textContent)")
        assert XSS_TEXT in shown
        text = page.eval("document.body.innerText")
        assert '<img src=x onerror="window.__xss=2">' in text  # the contradiction, as text
        assert page.eval("document.querySelectorAll('img[src=\"x\"]').length") == 0
        assert page.eval("[...document.scripts].some(s => s.text.includes('__xss'))") is False
        page.screenshot(ARTIFACTS / "review-xss.png")
        assert page_errors(page) == []
    finally:
        page.send("Page.close")
