"""Clip renders for review: an MP4 per clip (front and side view), cached by clip id.

Files live under MEDIA_DIR of the Label Studio local-files document root, so the server serves
them to logged-in users only (local storage), never to anyone else. The cache is keyed by clip
id and by RENDER_VERSION (bumped when the pictures change), so pushing again, or pushing the
drafts of a new model version, renders nothing twice.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from eai.toolkit.clip import Clip
from eai.toolkit.review.errors import ReviewError

MEDIA_DIR = "eai-media"
RENDER_VERSION = "r1"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def media_relpath(clip_id: str) -> PurePosixPath:
    """The render's path under the document root: eai-media/r1/<clip id>.mp4, each part of the
    id reduced to safe characters (a short hash keeps ids that reduce alike apart)."""
    parts = [p for p in clip_id.split("/") if p not in ("", ".", "..")]
    safe = [_SAFE.sub("_", p).strip("._") or "_" for p in parts] or ["_"]
    if safe != parts:
        safe[-1] += "-" + hashlib.sha1(clip_id.encode()).hexdigest()[:8]
    return PurePosixPath(MEDIA_DIR, RENDER_VERSION, *safe[:-1], safe[-1] + ".mp4")


def local_files_url(relpath: PurePosixPath) -> str:
    """The URL Label Studio serves a file under its local-files document root at."""
    return "/data/local-files/?d=" + quote(str(relpath), safe="/")


def ensure_render(clip: Clip, files_root: Path) -> tuple[Path, bool]:
    """(path, rendered now): the clip's MP4 under files_root, rendered when missing."""
    from eai.toolkit.render import write_animation

    path = files_root / media_relpath(clip.clip_id)
    if path.is_file() and path.stat().st_size > 0:
        return path, False
    try:
        write_animation(clip, path)
    except (ValueError, OSError) as e:
        raise ReviewError(f"clip {clip.clip_id!r}: could not render it to {path}: {e}") from e
    return path, True
