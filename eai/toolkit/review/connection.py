"""Which Label Studio a command talks to, and the SDK client for it.

--url (or LABEL_STUDIO_URL) names a Label Studio the user already runs; its token comes from
LABEL_STUDIO_API_KEY or --token-file (never from the command line, where other users of the
machine could read it). Without a URL, the local server of `eai review server start` is used
with the stored reviewer token. Either way the token is checked once (whoami) so a wrong one
fails with a clear line instead of a 401 in the middle of a push.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from eai.toolkit.review.credentials import load_credentials, mask
from eai.toolkit.review.errors import ReviewError
from eai.toolkit.review.server import ServerPaths, running


@dataclass(frozen=True)
class Connection:
    url: str
    token: str
    local: bool  # the server of `eai review server start`
    files_root: Path | None  # its local-files document root, when known
    user: str | None = None  # the e-mail the token belongs to

    def __repr__(self) -> str:
        return f"Connection(url={self.url!r}, token={mask(self.token)}, local={self.local})"

    def client(self):
        from label_studio_sdk import LabelStudio

        return LabelStudio(base_url=self.url, api_key=self.token, timeout=120)


def _read_token_file(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ReviewError(f"--token-file {path}: {e.strerror}") from None
    if not token:
        raise ReviewError(f"--token-file {path} is empty")
    return token


def connect(url: str | None = None, token_file: Path | None = None,
            files_root: Path | None = None, check: bool = True) -> Connection:
    """The Connection for the given flags (see the module docstring for the order)."""
    url = (url or os.environ.get("LABEL_STUDIO_URL") or "").rstrip("/") or None
    if url:
        token = (_read_token_file(token_file) if token_file
                 else os.environ.get("LABEL_STUDIO_API_KEY", "").strip())
        if not token:
            raise ReviewError(f"no API token for {url}: set LABEL_STUDIO_API_KEY or pass "
                              f"--token-file (Label Studio: Account & Settings > Access Token)")
        conn = Connection(url=url, token=token, local=False, files_root=files_root)
    else:
        paths = ServerPaths.default()
        info = running(paths)
        if info is None:
            raise ReviewError("no Label Studio is running: start one with `eai review server "
                              "start`, or pass --url (and set LABEL_STUDIO_API_KEY) to use "
                              "your own")
        creds = load_credentials(paths.credentials)
        conn = Connection(url=info.url, token=creds.token, local=True,
                          files_root=files_root or info.files_root, user=creds.username)
    return _checked(conn) if check else conn


def _checked(conn: Connection) -> Connection:
    try:
        me = conn.client().users.whoami()
    except Exception as e:  # noqa: BLE001 (the SDK raises many types; all mean the same here)
        code = getattr(e, "status_code", None)
        why = f"HTTP {code}" if code else f"{type(e).__name__}: {str(e)[:200]}"
        raise ReviewError(f"{conn.url} refused the API token {mask(conn.token)} ({why}); "
                          f"check the URL and the token") from None
    return Connection(conn.url, conn.token, conn.local, conn.files_root, user=me.email)
