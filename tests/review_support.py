"""Shared pieces of the review tests: drafts built in code, a real Label Studio for a test
module, and a small Chrome DevTools Protocol client over --remote-debugging-pipe (standard
library only, so the browser test needs no extra package and never downloads a browser)."""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from eai.toolkit.drafting.draft import Draft

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
XSS_TEXT = ('Looks calm. <script>window.__xss=1</script> <img src=x onerror="window.__xss=2"> '
            'The head stays level.')


# -- drafts ---------------------------------------------------------------------------------------
def evidence_for(clip) -> dict[str, dict[str, Any]]:
    """Evidence as a draft carries it: every descriptor computed from the clip, level
    "typical", except two set by hand (high speed, low head pitch) so the panels show levels."""
    from eai.toolkit.descriptors import DESCRIPTORS, compute_descriptors

    values = compute_descriptors(clip).values
    out = {}
    for d in DESCRIPTORS:
        v = values.get(d.name)
        ok = v is not None and math.isfinite(v)
        out[d.name] = {"value": round(float(v), 4) if ok else None, "unit": d.unit,
                       "level": "typical" if ok else None}
    out["root_speed_mean"]["level"] = "high"
    out["head_pitch_mean"]["level"] = "low"
    return out


def make_draft(clip, model_version: str = "eai-test-1", *, emotion: str | None = None,
               confidence: float = 0.6, explanation: str | None = None,
               classifier: str | None = None, contradictions: list[dict] | None = None,
               created_at: str = "2026-01-01T00:00:00Z") -> Draft:
    emotion = emotion if emotion is not None else clip.emotion
    return Draft(
        clip_id=clip.clip_id, model_version=model_version, emotion=emotion,
        confidence=confidence,
        explanation=explanation if explanation is not None else
        f"The body reads as {emotion}: the walk is brisk and the head is held up.",
        evidence=evidence_for(clip), prompt_template="emotion_explain_v1",
        probabilities={emotion: confidence} if emotion else {},
        classifier={"emotion": classifier or emotion, "confidence": 0.7},
        faithfulness={"faithful": not contradictions, "checked": 3, "claims": [],
                      "contradictions": contradictions or []},
        dataset=clip.dataset, action=clip.action, created_at=created_at)


def write_drafts(path: Path, drafts: list[Draft]) -> Path:
    path.write_text("".join(d.to_json() + "\n" for d in drafts), encoding="utf-8")
    return path


def review_dataset(root: Path) -> Path:
    """20 clips (4 per emotion, NPY only: the quickest to convert) in root/ds."""
    from eai.converters.pipeline import ConvertConfig, run_convert
    from eai.toolkit.sample_data import write_sample_data

    write_sample_data(root / "raw", clips_per_emotion=4, formats=("npy",))
    run_convert(ConvertConfig(inputs=[str(root / "raw")], out_dir=root / "ds", workers=1))
    return root / "ds"


# -- a real Label Studio --------------------------------------------------------------------------
def need_label_studio() -> None:
    from eai.toolkit.review.errors import ReviewError
    from eai.toolkit.review.server import label_studio_executable

    try:
        label_studio_executable()
    except ReviewError:
        pytest.skip("the `label-studio` package is not installed "
                    "(pip install -e '.[labelstudio]')")


class LocalLabelStudio:
    """One local server under its own EAI_HOME for a test module; stopped at the end."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._old = os.environ.get("EAI_HOME")

    def __enter__(self):
        from eai.toolkit.review import server

        os.environ["EAI_HOME"] = str(self.home)
        for k in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"):
            os.environ.pop(k, None)
        self.paths = server.ServerPaths.default()
        try:
            self.info, _ = server.start(paths=self.paths)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        from eai.toolkit.review.credentials import load_credentials

        self.creds = load_credentials(self.paths.credentials)
        return self

    def __exit__(self, *exc) -> None:
        from eai.toolkit.review import server

        server.stop(self.paths if hasattr(self, "paths") else None)
        if self._old is None:
            os.environ.pop("EAI_HOME", None)
        else:
            os.environ["EAI_HOME"] = self._old


# -- Chromium over the DevTools protocol ----------------------------------------------------------
def chromium_path() -> str | None:
    env = os.environ.get("EAI_CHROMIUM")
    if env and Path(env).is_file():
        return env
    return shutil.which("chromium") or shutil.which("chromium-browser")


class CdpError(RuntimeError):
    pass


class Chromium:
    """Headless Chromium driven over --remote-debugging-pipe: requests on fd 3, answers and
    events on fd 4, each a JSON message ended by a NUL byte."""

    FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--mute-audio", "--window-size=1400,1800", "--remote-debugging-pipe")

    def __init__(self, executable: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="eai-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # copies numbered 10+, so placing one on fd 3 cannot overwrite the other
        hi_r, hi_w = _dup_high(to_child_r), _dup_high(from_child_w)

        def child_fds() -> None:  # runs in the child before exec
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        self.proc = subprocess.Popen(
            [executable, *self.FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            # preexec_fn runs before our reader thread exists; it only places two fds
            preexec_fn=child_fds, pass_fds=(3, 4),  # noqa: PLW1509 stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in (to_child_r, from_child_w, hi_r, hi_w):
            os.close(fd)
        self._next = 0
        self._answers: dict[int, dict] = {}
        self.events: list[dict] = []
        self._cv = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        while True:
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._cv:
                    if "id" in msg:
                        self._answers[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                    self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60.0) -> dict:
        with self._cv:
            self._next += 1
            mid = self._next
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cv:
            while mid not in self._answers:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise CdpError(f"{method}: no answer from Chromium")
                self._cv.wait(left)
            answer = self._answers.pop(mid)
        if "error" in answer:
            raise CdpError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (CdpError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


def _dup_high(fd: int) -> int:
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_DUPFD, 10)


class Page:
    """One tab: navigate, evaluate JavaScript, wait for conditions, collect JS errors."""

    def __init__(self, browser: Chromium) -> None:
        self.b = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send("Target.attachToTarget",
                                    {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")

    def send(self, method: str, params: dict | None = None, timeout: float = 60.0) -> dict:
        return self.b.send(method, params, session=self.session, timeout=timeout)

    def goto(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})
        self.wait("document.readyState === 'complete'", timeout=60)

    def eval(self, expression: str, timeout: float = 30.0) -> Any:
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in r:
            raise CdpError(f"{expression[:80]}: {r['exceptionDetails'].get('text')}")
        return r["result"].get("value")

    def wait(self, expression: str, timeout: float = 60.0) -> bool:
        """Poll until the JavaScript expression is truthy."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.eval(f"!!({expression})")
            except CdpError:
                value = None  # the page is between documents
            if value:
                return value
            if time.monotonic() > deadline:
                raise CdpError(f"timed out after {timeout:.0f} s waiting for: {expression}")
            time.sleep(0.25)

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def errors(self) -> list[str]:
        """Uncaught exceptions, console.error calls and error log entries of this tab."""
        out = []
        for ev in self.b.events:
            if ev.get("sessionId") != self.session:
                continue
            m, p = ev.get("method"), ev.get("params", {})
            if m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                what = d.get("exception", {}).get("description") or d.get("text")
                out.append(f"exception: {what}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") == "error":
                out.append("console.error: " + " ".join(
                    str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                e = p["entry"]
                out.append(f"log ({e.get('source')}): {e.get('text')} {e.get('url', '')}")
        return out


def click(page: Page, selector_js: str) -> None:
    """A real mouse click (press and release) at the centre of the element selector_js
    returns, as a person's click: focus moves, so an edited text box commits its text."""
    rect = page.eval(f"(() => {{ const el = {selector_js}; if (!el) return null; "
                     f"el.scrollIntoView({{block: 'center'}}); "
                     f"const r = el.getBoundingClientRect(); "
                     f"return [r.x + r.width / 2, r.y + r.height / 2]; }})()")
    if not rect:
        raise CdpError(f"nothing to click: {selector_js}")
    for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
        page.send("Input.dispatchMouseEvent", {"type": kind, "x": rect[0], "y": rect[1],
                                               "button": "left", "clickCount": 1})


def listens_on(pid: int, port: int) -> bool | None:
    """Whether process pid has a listening TCP socket on port (Linux /proc), None elsewhere."""
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not tables[0].exists():
        return None
    inodes = set()
    for table in tables:
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            f = line.split()
            if int(f[1].rsplit(":", 1)[1], 16) == port and f[3] == "0A":  # 0A: LISTEN
                inodes.add(f[9])
    links = set()
    try:
        for fd in list(Path(f"/proc/{pid}/fd").iterdir()):
            try:
                links.add(os.readlink(fd))
            except OSError:  # closed meanwhile (the listing's own fd, for one)
                pass
    except OSError:
        return False
    return any(f"socket:[{i}]" in links for i in inodes)


# -- a reviewer's steps in the browser (shared by the browser tests) ------------------------------
# Label Studio's page asks its own server for "tips", which fetches them from the internet and
# answers 404 when offline: a network message of Label Studio itself, not an error of the page.
KNOWN_NETWORK_NOISE = ("/heidi-tips",)
# the task editor as a reviewer sees it: the animation, the editable text, the evidence table
EDITOR_READY = ("document.querySelector('video') && document.querySelector('textarea') && "
                "document.querySelector('table.eai-evidence')")


def start_chromium() -> Chromium:
    """A headless Chromium, or skip the test when none is installed."""
    exe = chromium_path()
    if exe is None:
        pytest.skip("chromium not found: run `bash scripts/setup_browser.sh` or set EAI_CHROMIUM")
    return Chromium(exe)


def page_errors(page: Page) -> list[str]:
    """The tab's JavaScript errors, Label Studio's own offline network noise aside."""
    return [e for e in page.errors() if not any(n in e for n in KNOWN_NETWORK_NOISE)]


def log_in(page: Page, ls: LocalLabelStudio) -> None:
    """Log in as the server's reviewer through Label Studio's login form (no-op when the
    browser already has a session)."""
    page.goto(f"{ls.info.url}/user/login/")
    if page.eval("!!document.querySelector('input[name=email]')"):
        page.eval(f"""(() => {{ const f = document.querySelector('form');
            f.querySelector('input[name=email]').value = {json.dumps(ls.creds.username)};
            f.querySelector('input[name=password]').value = {json.dumps(ls.creds.password)};
            f.submit(); return true; }})()""")
        page.wait("location.pathname !== '/user/login/' && document.readyState === 'complete'")


def button_js(text: str) -> str:
    """JavaScript for the first <button> whose text is exactly `text`."""
    return (f"[...document.querySelectorAll('button')]"
            f".find(b => b.textContent.trim() === {json.dumps(text)})")


def replace_text(page: Page, element_js: str, text: str) -> None:
    """Click into a text box, select all of it (Ctrl+A) and type `text` over it."""
    click(page, element_js)
    page.send("Input.dispatchKeyEvent", {"type": "keyDown", "modifiers": 2, "key": "a",
                                         "code": "KeyA", "windowsVirtualKeyCode": 65,
                                         "commands": ["selectAll"]})
    page.send("Input.dispatchKeyEvent", {"type": "keyUp", "modifiers": 2, "key": "a",
                                         "code": "KeyA", "windowsVirtualKeyCode": 65})
    page.send("Input.insertText", {"text": text})
