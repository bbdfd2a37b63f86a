"""The local Label Studio: start, stop and status, bound to 127.0.0.1 and kept under EAI_HOME.

Layout of EAI_HOME/labelstudio/:
  credentials.json  the reviewer account (credentials.py), 0600
  data/             Label Studio's SQLite database and uploads (--data-dir)
  files/            LOCAL_FILES_DOCUMENT_ROOT: clip renders live under files/eai-media/
  home/             a private HOME (Label Studio writes under ~/.local/share and ~/.config)
  server.json       pid, port, url of the running server, so another process can stop it
  server.log        its output (never holds the token: it is passed in the environment only)

Label Studio silently moves to the next port when the one it was given is busy, and a health
check on the old port could then be answered by another instance. So the port is picked free
beforehand, the log is watched for a move, and the server counts as ours only when
/api/current-user/whoami answers with our account for our token.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from eai.toolkit.review.credentials import Credentials, ensure_credentials, load_credentials
from eai.toolkit.review.errors import ReviewError

HOST = "127.0.0.1"
DEFAULT_PORT = 8080
# Variables Label Studio reads with or without its prefix that must not leak in from the user's
# shell (a stray PORT or USERNAME would silently change the server or the account).
_SCRUB = ("USERNAME", "PASSWORD", "USER_TOKEN", "PORT", "HOST", "DATABASE_NAME")
_MOVED = re.compile(r"Trying to start at (\d+)")
_SERVING = re.compile(r"Starting development server at http://[^:/]+:(\d+)/")


@dataclass(frozen=True)
class ServerPaths:
    root: Path

    @classmethod
    def default(cls) -> ServerPaths:
        from eai.toolkit.model import eai_home

        return cls(eai_home() / "labelstudio")

    credentials = property(lambda self: self.root / "credentials.json")
    data = property(lambda self: self.root / "data")
    files = property(lambda self: self.root / "files")
    home = property(lambda self: self.root / "home")
    state = property(lambda self: self.root / "server.json")
    log = property(lambda self: self.root / "server.log")


@dataclass(frozen=True)
class ServerInfo:
    url: str
    port: int
    pid: int
    username: str
    started_at: float
    log: Path
    files_root: Path  # LOCAL_FILES_DOCUMENT_ROOT of this server


def label_studio_executable() -> str:
    """The `label-studio` script of this environment (else on PATH), or a ReviewError."""
    beside = Path(sys.executable).with_name("label-studio")
    found = str(beside) if beside.is_file() else shutil.which("label-studio")
    if not found:
        raise ReviewError("the `label-studio` package is not installed in this environment: "
                          "pip install 'eai[labelstudio]' (or pass --url and a token to use a "
                          "Label Studio you already run)")
    return found


def port_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if s.connect_ex((host, port)) == 0:  # Label Studio's own test: something answers
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will bind
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def find_free_port(start: int, tries: int = 200) -> int:
    for port in range(start, min(start + tries, 65536)):
        if port_free(port):
            return port
    raise ReviewError(f"no free port in {start}-{start + tries - 1} on {HOST}; pass --port")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # a reused pid is not our server
        try:
            text = cmdline.read_bytes()
        except OSError:
            return False
        return b"label-studio" in text or b"label_studio" in text
    return True


def whoami(url: str, token: str, timeout: float = 5.0) -> dict | None:
    """The account the server at url knows for token (legacy `Token` auth), or None."""
    try:
        r = requests.get(f"{url}/api/current-user/whoami", timeout=timeout,
                         headers={"Authorization": f"Token {token}"})
    except requests.RequestException:
        return None
    if r.status_code != 200:
        return None
    try:
        return r.json()
    except ValueError:
        return None


def _child_env(paths: ServerPaths, creds: Credentials) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LABEL_STUDIO_", "HEARTEX_")) and k not in _SCRUB}
    for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        env.pop(k, None)
    env.update({
        "HOME": str(paths.home),
        "LABEL_STUDIO_USERNAME": creds.username,
        "LABEL_STUDIO_PASSWORD": creds.password,
        "LABEL_STUDIO_USER_TOKEN": creds.token,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",  # the SDK's `Token` auth needs it
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",  # no strangers on a shared machine
        "LOCAL_FILES_SERVING_ENABLED": "true",
        "LOCAL_FILES_DOCUMENT_ROOT": str(paths.files),
        "COLLECT_ANALYTICS": "false",
        "LATEST_VERSION_CHECK": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "PYTHONUNBUFFERED": "1",  # the log shows the port lines as they happen
        # a stable Django key, so browser sessions survive a restart
        "SECRET_KEY": hashlib.sha256(f"eai-ls:{creds.password}".encode()).hexdigest(),
    })
    return env


def read_state(paths: ServerPaths) -> ServerInfo | None:
    if not paths.state.is_file():
        return None
    try:
        d = json.loads(paths.state.read_text(encoding="utf-8"))
        return ServerInfo(url=d["url"], port=int(d["port"]), pid=int(d["pid"]),
                          username=d["username"], started_at=float(d["started_at"]),
                          log=Path(d["log"]), files_root=Path(d["files_root"]))
    except (ValueError, KeyError, TypeError):
        return None


def _write_state(paths: ServerPaths, info: ServerInfo) -> None:
    d = {"url": info.url, "port": info.port, "pid": info.pid, "username": info.username,
         "started_at": info.started_at, "log": str(info.log), "files_root": str(info.files_root)}
    tmp = paths.state.with_name(".server.json.tmp")
    tmp.write_text(json.dumps(d, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, paths.state)


def running(paths: ServerPaths | None = None) -> ServerInfo | None:
    """The recorded server when its process lives and it answers as our account, else None."""
    paths = paths or ServerPaths.default()
    info, creds = read_state(paths), load_credentials(paths.credentials)
    if info is None or creds is None or not _pid_alive(info.pid):
        return None
    me = whoami(info.url, creds.token)
    return info if me and me.get("email") == creds.username else None


def _log_tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


def start(port: int | None = None, timeout: float = 240.0,
          paths: ServerPaths | None = None) -> tuple[ServerInfo, bool]:
    """(info, started): start the local server unless ours already runs. Blocks until it
    answers as our account (first start about 40 s: database migrations)."""
    paths = paths or ServerPaths.default()
    current = running(paths)
    if current is not None:
        return current, False
    stale = read_state(paths)
    if stale is not None and _pid_alive(stale.pid):
        raise ReviewError(f"a Label Studio (pid {stale.pid}) runs on {stale.url} but does not "
                          f"answer as our account: it may still be starting; wait, or run "
                          f"`eai review server stop` (its log: {stale.log})")
    exe = label_studio_executable()
    if port is not None and not port_free(port):
        raise ReviewError(f"port {port} on {HOST} is in use; pass another --port or leave it "
                          f"out to take the next free one")
    creds, _ = ensure_credentials(paths.credentials)
    for d in (paths.data, paths.files, paths.home):
        d.mkdir(parents=True, exist_ok=True)
    port = port if port is not None else find_free_port(DEFAULT_PORT)
    log = open(paths.log, "w", encoding="utf-8")  # noqa: SIM115 (the child keeps it)
    cmd = [exe, "start", "--data-dir", str(paths.data), "--no-browser",
           "--internal-host", HOST, "-p", str(port)]
    proc = subprocess.Popen(cmd, env=_child_env(paths, creds), stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            cwd=str(paths.root), start_new_session=True)
    log.close()
    try:
        port = _wait_ready(proc, port, creds, paths.log, timeout)
    except BaseException:
        _terminate(proc.pid)
        raise
    info = ServerInfo(url=f"http://{HOST}:{port}", port=port, pid=proc.pid,
                      username=creds.username, started_at=time.time(), log=paths.log,
                      files_root=paths.files)
    _write_state(paths, info)
    return info, True


def _wait_ready(proc: subprocess.Popen, port: int, creds: Credentials, log: Path,
                timeout: float) -> int:
    """The port our child really serves on, once it answers whoami as our account."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ReviewError(f"Label Studio exited with code {proc.returncode} while starting; "
                              f"the end of {log}:\n{_log_tail(log)}")
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        moved = _MOVED.findall(text)
        serving = _SERVING.findall(text)
        if moved:  # someone took our port between the check and the start
            port = int(moved[-1])
        if serving:
            port = int(serving[-1])
            me = whoami(f"http://{HOST}:{port}", creds.token)
            if me is not None:
                if me.get("email") != creds.username:
                    raise ReviewError(f"port {port} answers as {me.get('email')!r}, not as "
                                      f"{creds.username!r}: another Label Studio? see {log}")
                return port
        time.sleep(0.5)
    raise ReviewError(f"Label Studio did not answer within {timeout:.0f} s; the end of "
                      f"{log}:\n{_log_tail(log)}")


def _terminate(pid: int, wait: float = 15.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)  # reap it when it is our child
            if done:
                return
        except ChildProcessError:
            pass
        if not _pid_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop(paths: ServerPaths | None = None) -> ServerInfo | None:
    """Stop the recorded server (SIGTERM, then SIGKILL after 15 s); None when none ran."""
    paths = paths or ServerPaths.default()
    info = read_state(paths)
    if info is None:
        return None
    alive = _pid_alive(info.pid)
    if alive:
        _terminate(info.pid)
    paths.state.unlink(missing_ok=True)
    return info if alive else None
