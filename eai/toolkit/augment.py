"""Label-preserving clip augmentations: left/right mirroring, time warping, rotation about Y.

Each returns a new Clip (the input is never modified) with the same clip_id and labels, and
appends what was done to `extra["augmentation"]` (a list of strings), so an augmented copy
stays traceable to its source and cross-validation folds grouped by clip_id stay leak-free.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from eai.toolkit.clip import Clip
from eai.toolkit.skeleton import CANONICAL_JOINTS, JOINT_INDEX, MIRROR_PAIRS

# MIRROR_PERMUTATION[i]: the joint whose data joint i takes when the body is mirrored.
_SWAP = {**{a: b for a, b in MIRROR_PAIRS}, **{b: a for a, b in MIRROR_PAIRS}}
MIRROR_PERMUTATION = np.array([JOINT_INDEX[_SWAP.get(j, j)] for j in CANONICAL_JOINTS])


def _derived(clip: Clip, positions: np.ndarray, joint_mask: np.ndarray, fps: float,
             step: str) -> Clip:
    extra = dict(clip.extra)
    extra["augmentation"] = [*clip.extra.get("augmentation", []), step]
    return dataclasses.replace(clip, positions=positions.astype(np.float32),
                               joint_mask=joint_mask.copy(), fps=fps, extra=extra)


def mirror_clip(clip: Clip) -> Clip:
    """Left/right mirror image: X negated and every l_* joint swapped with its r_* twin.

    The subject still faces +Z at frame 0 (mirroring in the sagittal plane keeps the heading),
    a left turn becomes a right turn, and the emotion label is unchanged.
    """
    pos = clip.positions[:, MIRROR_PERMUTATION].copy()
    pos[..., 0] *= -1.0
    return _derived(clip, pos, clip.joint_mask[MIRROR_PERMUTATION], clip.fps, "mirror")


def time_warp(clip: Clip, factor: float) -> Clip:
    """The same motion played `factor` times faster (factor > 1 shortens the clip, < 1
    lengthens it), resampled by linear interpolation at the clip's own frame rate. Output frame
    k shows source time k * factor (frames); the clip ends at the last whole output frame."""
    if not (factor > 0 and math.isfinite(factor)):
        raise ValueError(f"time_warp: factor must be a positive number, got {factor!r}")
    t = clip.num_frames
    src = np.arange(0.0, t - 1 + 1e-9, factor) if t > 1 else np.zeros(t)  # source frame times
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, t - 1)
    w = (src - i0)[:, None, None].astype(np.float32)
    pos = clip.positions[i0] * (1 - w) + clip.positions[i1] * w
    return _derived(clip, pos, clip.joint_mask, clip.fps, f"time_warp:{factor:g}")


def rotate_y(clip: Clip, degrees: float) -> Clip:
    """The clip rotated about the vertical axis through the origin (right-handed: a positive
    angle turns +Z towards +X). The floor stays at y = 0."""
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    rot = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=np.float32)
    return _derived(clip, clip.positions @ rot.T, clip.joint_mask, clip.fps,
                    f"rotate_y:{degrees:g}")
