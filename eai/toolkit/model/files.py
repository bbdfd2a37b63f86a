"""Directory-level file helpers for model directories: hashes and atomic publishing.

A model directory (or a cached base model) is built in a hidden temporary sibling
(`.NAME.tmp-XXXX`) and renamed into place in one step, so a reader never sees half a checkpoint.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path


class ModelError(ValueError):
    """A model-directory problem a user can fix (the message says how)."""


class ModelDirExistsError(ModelError, FileExistsError):
    pass


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_files(paths: Iterable[Path], root: Path | None = None) -> str:
    """One hash over several files: sha256 of "name sha256\\n" lines, in the order given
    (name: the path relative to root when given, else the file name)."""
    h = hashlib.sha256()
    for p in paths:
        name = Path(p).relative_to(root).as_posix() if root else Path(p).name
        h.update(f"{name} {sha256_file(p)}\n".encode())
    return h.hexdigest()


def weight_files(directory: str | Path) -> list[Path]:
    """The *.safetensors files of a Hugging Face checkpoint directory, sorted by name."""
    return sorted(Path(directory).glob("*.safetensors"))


def temp_sibling(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish_dir(tmp: Path, final: Path, replace: bool) -> bool:
    """Rename the finished directory `tmp` to `final`.

    replace=False: an existing non-empty `final` wins (tmp is removed) and False is returned; an
    empty one is replaced. replace=True: the old `final` is moved aside, tmp renamed in, and the
    old one removed. Files get the usual permissions (transformers writes some as 0600)."""
    mode = 0o666 & ~_umask()
    for p in tmp.rglob("*"):
        if p.is_file():
            os.chmod(p, mode)
    os.chmod(tmp, 0o777 & ~_umask())
    old = None
    if final.exists():
        if not replace and any(final.iterdir()):
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.replace(final, old / final.name)
    try:
        os.rename(tmp, final)
    except OSError:
        if old is not None:  # put the previous directory back
            os.replace(old / final.name, final)
        shutil.rmtree(tmp, ignore_errors=True)
        if final.exists() and not replace:
            return False  # another process published first
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return True


def sha256_tree(root: str | Path) -> str:
    """sha256_files over every file below root (sorted relative paths, hidden files included)."""
    root = Path(root)
    return sha256_files(sorted(p for p in root.rglob("*") if p.is_file()), root=root)
