"""The table of formats: file suffix -> reader. One reader module per format."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from eai.converters.base import ReadOptions
from eai.toolkit.clip import Clip

Reader = Callable[[Path, ReadOptions], Clip]


def _bvh(path: Path, opts: ReadOptions) -> Clip:
    from eai.converters import bvh
    return bvh.read(path, opts)


def _c3d(path: Path, opts: ReadOptions) -> Clip:
    from eai.converters import c3d
    return c3d.read(path, opts)


def _npy(path: Path, opts: ReadOptions) -> Clip:
    from eai.converters import npy
    return npy.read(path, opts)


# Readers import lazily so `eai --help` stays fast and a broken optional library only
# affects its own format.
FORMATS: dict[str, tuple[str, Reader]] = {
    ".bvh": ("bvh", _bvh),
    ".c3d": ("c3d", _c3d),
    ".npy": ("npy", _npy),
    ".npz": ("npy", _npy),
}


def reader_for(path: Path) -> tuple[str, Reader] | None:
    return FORMATS.get(path.suffix.lower())
