"""From retargeted source points to the canonical conventions of DESIGN.md.

All functions are pure. Shapes: positions (T, 19, 3) in canonical joint order, NaN where a joint
or sample is missing; mask (19,) bool. Steps, in the order `canonicalize` applies them:
gap filling (source frames) -> units to metres -> up axis to +Y -> facing +Z at the first frame,
pelvis over the origin -> floor at y = 0 -> resampling to the target frame rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from eai.toolkit.skeleton import CANONICAL_JOINTS, JOINT_INDEX

# Metres per unit.
UNIT_SCALE: dict[str, float] = {
    "m": 1.0, "dm": 0.1, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "in": 0.0254, "ft": 0.3048,
    # CMU's BVH unit: (1.0 / 0.45) * 2.54 / 100 metres, as documented with the CMU database.
    "cmu": (1.0 / 0.45) * 2.54 / 100,
}
# Units considered when a file states none, in order of preference when two fit equally.
GUESSABLE_UNITS = ("cm", "m", "mm", "inch", "cmu")
# Thigh + shin length of an adult, the yardstick for guessing units (pose-invariant).
TYPICAL_LEG_M = 0.82

_J = JOINT_INDEX


@dataclass
class CanonicalResult:
    positions: np.ndarray  # (T', 19, 3) float32
    units: str
    notes: list[str] = field(default_factory=list)


def unit_scale(units: str) -> float:
    key = units.strip().lower()
    if key in ("centimeter", "centimeters", "centimetre", "centimetres"):
        key = "cm"
    elif key in ("millimeter", "millimeters", "millimetre", "millimetres"):
        key = "mm"
    elif key in ("meter", "meters", "metre", "metres"):
        key = "m"
    elif key in ("inches",):
        key = "inch"
    if key not in UNIT_SCALE:
        raise ValueError(f"unknown length unit {units!r}; use one of {', '.join(UNIT_SCALE)}")
    return UNIT_SCALE[key]


def leg_length(positions: np.ndarray) -> float:
    """Median thigh + shin length over frames and both legs, in the positions' own units."""
    lengths = []
    for side in "lr":
        hip, knee, ankle = (positions[:, _J[f"{side}_{n}"]] for n in ("hip", "knee", "ankle"))
        leg = np.linalg.norm(knee - hip, axis=-1) + np.linalg.norm(ankle - knee, axis=-1)
        lengths.append(leg)
    all_lengths = np.concatenate(lengths)
    all_lengths = all_lengths[np.isfinite(all_lengths)]
    return float(np.median(all_lengths)) if all_lengths.size else float("nan")


def guess_units(positions: np.ndarray) -> tuple[str, float]:
    """The unit whose scale makes the legs adult-sized; returns (unit, leg length in metres)."""
    leg = leg_length(positions)
    if not math.isfinite(leg) or leg <= 0:
        return "m", float("nan")
    best = min(GUESSABLE_UNITS,
               key=lambda u: abs(math.log(leg * UNIT_SCALE[u] / TYPICAL_LEG_M)))
    return best, leg * UNIT_SCALE[best]


def fill_gaps(positions: np.ndarray, max_gap: int) -> tuple[np.ndarray, list[str]]:
    """Linearly interpolate NaN runs of at most `max_gap` frames inside each joint's track.

    Longer runs, and runs touching the clip's start or end, stay NaN. Returns the filled copy
    and a note naming the joints that keep missing samples (none when nothing is left).
    """
    if np.isfinite(positions).all():
        return positions, []
    out = positions.copy()
    left: list[str] = []
    frames = np.arange(positions.shape[0])
    for j in range(positions.shape[1]):
        missing = ~np.isfinite(out[:, j]).all(axis=-1)
        if not missing.any() or missing.all():
            continue
        valid = ~missing
        for c in range(3):
            out[missing, j, c] = np.interp(frames[missing], frames[valid], out[valid, j, c])
        # Undo the fill on runs that are too long or open-ended.
        starts, ends = _runs(missing)
        kept = 0
        for s, e in zip(starts, ends):
            if e - s > max_gap or s == 0 or e == len(missing):
                out[s:e, j] = np.nan
                kept += e - s
        if kept:
            left.append(f"{CANONICAL_JOINTS[j]} {kept}")
    notes = []
    if left:
        notes.append(f"missing samples kept as NaN (gaps over {max_gap} source frames or at the "
                     f"clip's ends), frames per joint: {', '.join(left)}")
    return out, notes


def _runs(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and end (exclusive) indices of the True runs in a 1-D bool array."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    diff = np.diff(padded)
    return np.flatnonzero(diff == 1), np.flatnonzero(diff == -1)


def detect_up_axis(positions: np.ndarray) -> np.ndarray:
    """Signed unit basis vector pointing from the feet to the top of the body.

    Uses the highest joint the source has (head, else neck, else chest) over the lowest (ankles,
    else knees, else pelvis), averaged over (at most about 256) frames.
    """
    positions = positions[:: max(1, positions.shape[0] // 256)]  # a direction needs few frames

    def first_present(names: tuple[str, ...]) -> np.ndarray | None:
        for name in names:
            p = positions[:, _J[name]]
            if np.isfinite(p).any():
                return p
        return None

    top = first_present(("head", "neck", "chest"))
    bottom = None
    for pair in (("l_ankle", "r_ankle"), ("l_knee", "r_knee")):
        pts = positions[:, [_J[pair[0]], _J[pair[1]]]]
        if np.isfinite(pts).any():
            with np.errstate(invalid="ignore"):
                bottom = np.nanmean(pts, axis=1)
            break
    if bottom is None:
        bottom = first_present(("pelvis",))
    if top is None or bottom is None:
        return np.array([0.0, 1.0, 0.0])
    with np.errstate(invalid="ignore"):
        v = np.nanmean(top - bottom, axis=0)
    if not np.isfinite(v).all():
        return np.array([0.0, 1.0, 0.0])
    axis = int(np.argmax(np.abs(v)))
    up = np.zeros(3)
    up[axis] = math.copysign(1.0, v[axis])
    return up


def up_to_y_rotation(up: np.ndarray) -> np.ndarray:
    """A proper rotation (3, 3) that maps the unit vector `up` onto +Y (applied as R @ p)."""
    up = np.asarray(up, dtype=np.float64)
    up = up / np.linalg.norm(up)
    helper = np.array([0.0, 0.0, 1.0]) if abs(up[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    new_x = np.cross(up, helper)
    new_x /= np.linalg.norm(new_x)
    new_z = np.cross(new_x, up)
    return np.stack([new_x, up, new_z])  # rows: the new axes in old coordinates


def facing_angle(positions: np.ndarray, linear: np.ndarray | None = None) -> float | None:
    """Heading (radians about +Y) of the body at its first complete frame; 0 means facing +Z.

    `linear` (3, 3) maps the positions into a Y-up frame first (identity when already Y up);
    only the one frame needed is transformed. The subject's left comes from the hips and
    shoulders together, and forward = left x up, so left = +X when facing +Z.
    """
    lateral = np.zeros((positions.shape[0], 3))
    count = np.zeros(positions.shape[0])
    for left, right in (("l_hip", "r_hip"), ("l_shoulder", "r_shoulder")):
        d = positions[:, _J[left]] - positions[:, _J[right]]
        ok = np.isfinite(d).all(axis=-1)
        lateral[ok] += d[ok]
        count += ok
    usable = np.flatnonzero(count > 0)
    if usable.size == 0:
        return None
    lx, _, lz = lateral[usable[0]] if linear is None else linear @ lateral[usable[0]]
    if math.hypot(lx, lz) < 1e-12:
        return None
    # forward = left x (0, 1, 0) = (-lz, 0, lx)
    return math.atan2(-lz, lx)


def rotation_about_y(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def floor_height(positions: np.ndarray, percentile: float = 0.0) -> float:
    """Height of the floor: the lowest foot point over the clip.

    For marker data pass a small percentile (e.g. 1): one bad marker sample must not sink the
    whole clip. Skeleton data (forward kinematics) has no such outliers and uses the minimum.
    """
    feet = positions[:, [_J[j] for j in ("l_ankle", "l_foot", "r_ankle", "r_foot")], 1]
    if not np.isfinite(feet).any():
        feet = positions[:, :, 1]
    lowest = np.nanmin(np.where(np.isfinite(feet), feet, np.inf), axis=1)
    lowest = lowest[np.isfinite(lowest)]
    if not lowest.size:
        return 0.0
    return float(lowest.min() if percentile <= 0 else np.percentile(lowest, percentile))


def resample(positions: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Linear resampling along time. (T, ...) -> (T', ...), T' covering the same duration."""
    # A relative tolerance: frame times are often rounded ("0.0333333" is 30.0000030 fps), and
    # resampling for that difference would only drop the last frame.
    if positions.shape[0] < 2 or abs(src_fps - dst_fps) <= 1e-4 * dst_fps:
        return positions
    duration = (positions.shape[0] - 1) / src_fps
    n_out = int(math.floor(duration * dst_fps + 1e-6)) + 1
    t = np.arange(n_out) * (src_fps / dst_fps)
    i0 = np.minimum(np.floor(t).astype(np.int64), positions.shape[0] - 1)
    i1 = np.minimum(i0 + 1, positions.shape[0] - 1)
    w = (t - i0).reshape((-1,) + (1,) * (positions.ndim - 1))
    return positions[i0] * (1.0 - w) + positions[i1] * w


def canonicalize(positions: np.ndarray, *, src_fps: float, dst_fps: float, units: str | None,
                 up_axis: str | None = None, max_gap_s: float = 0.25,
                 floor_percentile: float = 0.0) -> CanonicalResult:
    """Retargeted (T, 19, 3) points in source units/axes -> canonical conventions.

    units: the source unit, or None to guess it from the leg length (with a note saying so).
    up_axis: "x", "y", "z" or "-x", ... when the source states it; else detected.
    The unit scale and both rotations are folded into one 3x3 matrix and the shifts into one
    offset, so the motion is transformed in a single pass.
    """
    notes: list[str] = []
    filled, gap_notes = fill_gaps(positions, max(0, int(round(max_gap_s * src_fps))))
    notes += gap_notes

    if units is None:
        units, leg_m = guess_units(filled)
        notes.append(
            f"units not stated; guessed {units!r} from the leg length ({leg_m:.2f} m). "
            f"Pass --units UNIT to set them and silence this warning."
        )
    linear = unit_scale(units) * np.eye(3)

    if up_axis:
        up = np.zeros(3)
        up["xyz".index(up_axis[-1].lower())] = -1.0 if up_axis.startswith("-") else 1.0
    else:
        up = detect_up_axis(filled)  # a direction: the unit scale does not matter
    if not np.allclose(up, [0.0, 1.0, 0.0]):
        axis = int(np.argmax(np.abs(up)))
        notes.append(f"up axis was {'-' if up[axis] < 0 else '+'}{'XYZ'[axis]}; rotated to +Y")
        linear = up_to_y_rotation(up) @ linear

    heading = facing_angle(filled, linear)
    if heading is not None:
        linear = rotation_about_y(-heading) @ linear
    pos = filled @ linear.T

    offset = np.zeros(3)
    pelvis = pos[:, _J["pelvis"]]
    first = np.flatnonzero(np.isfinite(pelvis).all(axis=-1))
    if first.size:
        offset[[0, 2]] = pelvis[first[0], [0, 2]]
    offset[1] = floor_height(pos, floor_percentile)
    pos -= offset

    pos = resample(pos, src_fps, dst_fps)
    return CanonicalResult(positions=pos.astype(np.float32), units=units, notes=notes)
