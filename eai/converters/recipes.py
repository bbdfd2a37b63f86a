"""A tiny language for saying where a canonical joint lies in terms of a source's points.

A profile maps each canonical joint to a recipe: a named point (`P("LeftArm")`), the first
present of several names (`P("Neck1", "Neck")`), a mean of points (`mean(...)`), or a point
part-way between two others (`lerp(a, b, t)`). Marker profiles can also use `Custom` for joint
centres that need a segment frame (e.g. hip joint centres from pelvis markers).

Names are matched after `normalize_name`: case-insensitive, surrounding spaces dropped, and a
namespace prefix removed (`mixamorig:Hips` -> `hips`, `Derrick:LASI` -> `lasi`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Protocol

import numpy as np


def normalize_name(name: str) -> str:
    """Compare joint and marker names the way people mean them."""
    name = name.strip()
    if ":" in name:
        name = name.rsplit(":", 1)[1]
    return name.strip().lower()


@lru_cache(maxsize=64)  # files of one dataset share their names
def _name_index(names: tuple[str, ...]) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, n in enumerate(names):
        # A duplicate label keeps its first occurrence; later ones usually are unused slots.
        index.setdefault(normalize_name(n), i)
    return index


class Points:
    """Source points by normalized name: (T, 3) arrays, NaN where missing."""

    def __init__(self, positions: np.ndarray, names: list[str]):
        self._index = _name_index(tuple(names))
        self.positions = positions
        self.num_frames = positions.shape[0]

    def has(self, name: str) -> bool:
        i = self._index.get(normalize_name(name))
        return i is not None and bool(np.isfinite(self.positions[:, i]).any())

    def get(self, name: str) -> np.ndarray | None:
        i = self._index.get(normalize_name(name))
        if i is None:
            return None
        p = self.positions[:, i]
        return p if np.isfinite(p).any() else None

    @property
    def names(self) -> set[str]:
        return set(self._index)


class Recipe(Protocol):
    def __call__(self, pts: Points) -> np.ndarray | None: ...

    def names(self) -> set[str]: ...


@dataclass(frozen=True)
class P:
    """The first of these names that the source has."""

    alternatives: tuple[str, ...]

    def __init__(self, *alternatives: str):
        object.__setattr__(self, "alternatives", alternatives)

    def __call__(self, pts: Points) -> np.ndarray | None:
        for name in self.alternatives:
            p = pts.get(name)
            if p is not None:
                return p
        return None

    def names(self) -> set[str]:
        return {normalize_name(self.alternatives[0])}

    def __str__(self) -> str:
        return "/".join(self.alternatives)


def _as_recipe(x: "Recipe | str") -> Recipe:
    return P(x) if isinstance(x, str) else x


@dataclass(frozen=True)
class mean:  # noqa: N801 - reads like a function in profile tables
    """The mean of several points (all must be present; NaN where any sample is missing)."""

    parts: tuple

    def __init__(self, *parts: "Recipe | str"):
        object.__setattr__(self, "parts", tuple(_as_recipe(p) for p in parts))

    def __call__(self, pts: Points) -> np.ndarray | None:
        arrays = [p(pts) for p in self.parts]
        if any(a is None for a in arrays):
            return None
        return np.mean(np.stack(arrays), axis=0)

    def names(self) -> set[str]:
        return set().union(*(p.names() for p in self.parts))

    def __str__(self) -> str:
        return "mean(" + ", ".join(map(str, self.parts)) + ")"


@dataclass(frozen=True)
class lerp:  # noqa: N801
    """a + t * (b - a): a point part-way from a to b (t may lie outside [0, 1])."""

    a: Recipe
    b: Recipe
    t: float

    def __init__(self, a: "Recipe | str", b: "Recipe | str", t: float):
        object.__setattr__(self, "a", _as_recipe(a))
        object.__setattr__(self, "b", _as_recipe(b))
        object.__setattr__(self, "t", float(t))

    def __call__(self, pts: Points) -> np.ndarray | None:
        a, b = self.a(pts), self.b(pts)
        if a is None or b is None:
            return None
        return a + self.t * (b - a)

    def names(self) -> set[str]:
        return self.a.names() | self.b.names()

    def __str__(self) -> str:
        return f"lerp({self.a}, {self.b}, {self.t:g})"


@dataclass(frozen=True)
class Custom:
    """A joint centre computed by a function of the points (e.g. regression in a segment frame)."""

    fn: Callable[[Points], "np.ndarray | None"]
    uses: tuple[str, ...]
    label: str = "custom"

    def __call__(self, pts: Points) -> np.ndarray | None:
        return self.fn(pts)

    def names(self) -> set[str]:
        return {normalize_name(n) for n in self.uses}

    def __str__(self) -> str:
        return self.label
