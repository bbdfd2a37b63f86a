"""The Clip type that flows through every stage of eai, and the raw motion a reader produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eai.toolkit.skeleton import CANONICAL_JOINTS, NUM_JOINTS


@dataclass
class SourceInfo:
    """Where a clip came from, so every number in the dataset can be traced back."""

    path: str
    format: str  # "bvh" | "c3d" | "npy"
    sha256: str
    fps: float  # the source's own frame rate
    joint_names: list[str]  # the source's joint or marker names, as written in the file
    units: str  # the source's length unit, e.g. "cm", "mm", "m", "inch", "cmu"
    profile: str  # the skeleton profile used to reach the canonical skeleton
    notes: list[str] = field(default_factory=list)  # lossy steps and guesses, as sentences


@dataclass
class RawMotion:
    """What a format parser yields before retargeting: named 3D points over time.

    positions: (T, P, 3) float, in the file's own units and axes; NaN where a sample is missing.
    names: P point names (joints, end sites or markers) as written in the file.
    units: the unit the file states, or None when it states none (guessed later).
    """

    positions: np.ndarray
    names: list[str]
    fps: float
    units: str | None
    up_axis: str | None = None  # "x" | "y" | "z" when the format says so, else detected
    notes: list[str] = field(default_factory=list)
    sha256: str | None = None  # of the file, when the parser already hashed the bytes it read


@dataclass
class Clip:
    """One motion clip in the canonical skeleton.

    positions: (T, 19, 3) float32, metres, Y up, facing +Z at frame 0, floor at y = 0.
    joint_mask: (19,) bool, which canonical joints the source really had (others are NaN).
    """

    clip_id: str
    positions: np.ndarray
    joint_mask: np.ndarray
    fps: float
    source: SourceInfo
    dataset: str
    emotion: str | None = None
    label_raw: str | None = None
    subject: str | None = None
    action: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.positions = np.asarray(self.positions, dtype=np.float32)
        self.joint_mask = np.asarray(self.joint_mask, dtype=bool)
        if self.positions.ndim != 3 or self.positions.shape[1:] != (NUM_JOINTS, 3):
            raise ValueError(
                f"Clip {self.clip_id!r}: positions must have shape (T, {NUM_JOINTS}, 3), "
                f"got {self.positions.shape}"
            )
        if self.joint_mask.shape != (NUM_JOINTS,):
            raise ValueError(f"Clip {self.clip_id!r}: joint_mask must have shape ({NUM_JOINTS},)")

    @property
    def num_frames(self) -> int:
        return int(self.positions.shape[0])

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps

    def joint(self, name: str) -> np.ndarray:
        """(T, 3) trajectory of one canonical joint."""
        return self.positions[:, CANONICAL_JOINTS.index(name)]
