"""The local Label Studio's reviewer account: e-mail, password and API token.

Taken from EAI_LS_USERNAME / EAI_LS_PASSWORD / EAI_LS_TOKEN when set at the first start, else
generated; stored in EAI_HOME/labelstudio/credentials.json readable by its owner only (0600),
because Label Studio can set the legacy token only when the account is created and later commands
(push, pull, the browser) need the same values. Secrets are shown masked, never in full.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from eai.toolkit.review.errors import ReviewError

DEFAULT_USERNAME = "reviewer@eai.local"
ENV = {"username": "EAI_LS_USERNAME", "password": "EAI_LS_PASSWORD", "token": "EAI_LS_TOKEN"}


def mask(secret: str | None) -> str:
    """A secret as it may be printed: its first 4 characters and its length."""
    if not secret:
        return "(none)"
    return f"{secret[:4]}…({len(secret)} chars)"


@dataclass(frozen=True)
class Credentials:
    username: str  # Label Studio logs in with an e-mail address
    password: str
    token: str

    def __repr__(self) -> str:  # never the secrets, even in a traceback or a log line
        return f"Credentials(username={self.username!r}, password=***, token={mask(self.token)})"


def _from_env() -> dict[str, str]:
    return {k: os.environ[v] for k, v in ENV.items() if os.environ.get(v)}


def _validate(c: Credentials, origin: str) -> Credentials:
    if "@" not in c.username:
        raise ReviewError(f"{origin}: username {c.username!r} must be an e-mail address "
                          f"(Label Studio logs in with one)")
    if len(c.token) < 20 or not c.token.isalnum():
        raise ReviewError(f"{origin}: the API token must be at least 20 letters or digits "
                          f"(got {mask(c.token)}); unset {ENV['token']} to have one generated")
    if len(c.password) < 8:
        raise ReviewError(f"{origin}: the password must have at least 8 characters")
    return c


def write_private(path: Path, text: str) -> None:
    """Write text to path created with mode 0600 (never world-readable, not even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o600)  # in case the file already existed with wider permissions
    os.replace(tmp, path)


def load_credentials(path: Path) -> Credentials | None:
    """The stored credentials, or None when there are none yet."""
    if not path.is_file():
        return None
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ReviewError(f"{path} is readable by others (mode {mode:o}); run "
                          f"`chmod 600 {path}` (it holds the Label Studio password and token)")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        return _validate(Credentials(d["username"], d["password"], d["token"]), str(path))
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ReviewError(f"{path} is not a credentials file ({type(e).__name__}: {e}); "
                          f"delete it together with the Label Studio data folder beside it "
                          f"to start afresh") from None


def ensure_credentials(path: Path) -> tuple[Credentials, bool]:
    """(credentials, created): the stored ones, else new ones from the environment or random."""
    stored = load_credentials(path)
    if stored is not None:
        return stored, False
    env = _from_env()
    c = _validate(Credentials(username=env.get("username", DEFAULT_USERNAME),
                              password=env.get("password") or secrets.token_urlsafe(18),
                              token=env.get("token") or secrets.token_hex(20)),
                  "the EAI_LS_* environment variables")
    write_private(path, json.dumps(asdict(c), indent=1) + "\n")
    return c, True


def env_mismatch(stored: Credentials) -> list[str]:
    """Names of EAI_LS_* variables that are set but differ from the stored account (ignored:
    the account exists already and its token cannot be changed from the environment)."""
    env = _from_env()
    return [ENV[k] for k, v in env.items() if getattr(stored, k) != v]
