"""Turn the INPUT arguments of `eai convert` (files, folders, globs) into input files.

Each input file remembers the root it was found under: its clip id is
`<dataset>/<path relative to that root, without suffix>`, where the dataset defaults to the
root folder's name. Ids therefore stay the same whatever the working directory.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from eai.converters.registry import FORMATS


@dataclass(frozen=True)
class InputFile:
    path: Path  # absolute
    root: Path  # absolute folder the relative path is taken from
    dataset: str

    @property
    def rel_path(self) -> str:
        return self.path.relative_to(self.root).as_posix()

    @property
    def clip_id(self) -> str:
        rel = self.path.relative_to(self.root).with_suffix("").as_posix()
        return f"{self.dataset}/{rel}"


def _abs(p: Path | str) -> Path:
    """Absolute and normalised, without resolving symlinks (ids follow the user's paths)."""
    return Path(os.path.abspath(p))


def _glob_root(pattern: str) -> Path:
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def discover_inputs(inputs: list[str], dataset: str | None = None) -> list[InputFile]:
    """Input files in a stable order. Raises FileNotFoundError naming an input that matched
    nothing (a typo should not silently convert fewer files)."""
    found: list[InputFile] = []
    seen: set[Path] = set()
    for arg in inputs:
        if glob.has_magic(arg):
            root = _abs(_glob_root(arg))
            paths = [Path(p) for p in sorted(glob.glob(arg, recursive=True))]
            paths = [p for p in paths if p.is_file() and p.suffix.lower() in FORMATS]
        else:
            p = Path(arg)
            if p.is_dir():
                root = _abs(p)
                paths = sorted(q for q in p.rglob("*")
                               if q.is_file() and q.suffix.lower() in FORMATS
                               and not any(part.startswith(".") for part in q.relative_to(p).parts))
            elif p.is_file():
                root = _abs(p).parent
                paths = [p]
            else:
                raise FileNotFoundError(f"input {arg!r} does not exist")
        if not paths:
            raise FileNotFoundError(f"input {arg!r} holds no .bvh, .c3d, .npy or .npz file")
        name = dataset or root.name or "data"
        for p in paths:
            absolute = _abs(p)
            if absolute in seen:
                continue
            seen.add(absolute)
            found.append(InputFile(path=absolute, root=root, dataset=name))
    return found
