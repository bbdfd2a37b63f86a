"""Clip -> tokenizer input: body-frame pose per part, root motion, masks; and back to positions.

Conventions (see docs/tokenizer.md):
- The *heading* yaw of a frame (radians, 0 = facing +Z, positive turns +Z towards +X) comes from
  the across-body vector (left minus right hip, plus left minus right shoulder, whichever the clip
  has), projected on the floor; forward = across x up.
- Pose: each non-root joint minus the pelvis, rotated into the heading frame (R_y(-yaw)), metres.
  So one code means one pose whatever the walking direction.
- Root motion (4 values per frame): pelvis horizontal velocity in the heading frame (lateral x,
  forward z; m/s), heading yaw rate (rad/s) and pelvis height (m). Velocity and yaw rate at t
  are backward differences (t - 1 -> t); frame 0 copies frame 1.
- Missing joints (joint_mask false or NaN samples) are zero-filled after normalisation (the
  training mean) and flagged in a mask channel; they never enter the loss.
- Parts, in token order: torso (+ root motion), left arm, right arm, left leg, right leg.
"""

from __future__ import annotations

import numpy as np

from eai.toolkit.skeleton import JOINT_INDEX, MIRROR_PAIRS, NUM_JOINTS

PART_NAMES = ("torso", "l_arm", "r_arm", "l_leg", "r_leg")
PART_JOINTS = (("spine", "chest", "neck", "head"), ("l_shoulder", "l_elbow", "l_wrist"),
               ("r_shoulder", "r_elbow", "r_wrist"), ("l_hip", "l_knee", "l_ankle", "l_foot"),
               ("r_hip", "r_knee", "r_ankle", "r_foot"))
ROOT_NAMES = ("root_vx", "root_vz", "root_yaw_rate", "root_height")
NUM_PARTS = len(PART_NAMES)
REL_JOINTS = tuple(j for part in PART_JOINTS for j in part)  # 18 non-root joints
NUM_FEATURES = 3 * len(REL_JOINTS) + len(ROOT_NAMES)  # 58: pose values, then root motion
ROOT_SLICE = slice(3 * len(REL_JOINTS), NUM_FEATURES)
PELVIS = JOINT_INDEX["pelvis"]
_MIRROR = list(range(NUM_JOINTS))
for _l, _r in MIRROR_PAIRS:
    _MIRROR[JOINT_INDEX[_l]], _MIRROR[JOINT_INDEX[_r]] = JOINT_INDEX[_r], JOINT_INDEX[_l]


def _part_layout() -> tuple[np.ndarray, np.ndarray]:
    """Gather indices into a feature row padded with one blank column (index NUM_FEATURES):
    per part its value columns (P, PART_WIDTH), and its mask columns (P, PART_MASK_WIDTH), one
    per joint (the joint's x column; the torso's last is the root height, i.e. the pelvis)."""
    cols, masks, start = [], [], 0
    for p, joints in enumerate(PART_JOINTS):
        c = list(range(start, start + 3 * len(joints)))
        m = c[::3]
        start += 3 * len(joints)
        if p == 0:
            c += list(range(ROOT_SLICE.start, ROOT_SLICE.stop))
            m += [ROOT_SLICE.start + 3]
        cols.append(c)
        masks.append(m)
    pad = lambda rows: np.array([r + [NUM_FEATURES] * (max(map(len, rows)) - len(r))
                                 for r in rows])
    return pad(cols), pad(masks)


PART_INDEX, PART_MASK_INDEX = _part_layout()
PART_WIDTH = PART_INDEX.shape[1]  # values per part, padded (16)
PART_MASK_WIDTH = PART_MASK_INDEX.shape[1]  # mask channels per part, padded (5)


def mirror_positions(positions: np.ndarray,
                     joint_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left/right mirror: swap l_/r_ joints and negate X. (T, 19, 3), (19,) -> same shapes."""
    out = positions[:, _MIRROR].copy()
    out[..., 0] *= -1.0
    return out, joint_mask[_MIRROR]


def _fill_nearest(x: np.ndarray) -> np.ndarray:
    """Fill NaNs of a 1D series with the nearest earlier (else later) value; all-NaN -> 0."""
    ok = np.isfinite(x)
    if ok.all():
        return x
    if not ok.any():
        return np.zeros_like(x)
    idx = np.where(ok, np.arange(len(x)), 0)
    np.maximum.accumulate(idx, out=idx)
    idx[: np.argmax(ok)] = np.argmax(ok)
    return x[idx]


def heading_yaw(positions: np.ndarray, joint_mask: np.ndarray) -> np.ndarray:
    """(T, 19, 3) -> (T,) heading yaw in radians, unwrapped (continuous over turns)."""
    across = np.zeros((len(positions), 3), dtype=np.float64)
    for a, b in (("l_hip", "r_hip"), ("l_shoulder", "r_shoulder")):
        ia, ib = JOINT_INDEX[a], JOINT_INDEX[b]
        if joint_mask[ia] and joint_mask[ib]:
            d = positions[:, ia] - positions[:, ib]
            across += np.where(np.isfinite(d), d, 0.0)
    ax, az = across[:, 0], across[:, 2]
    yaw = np.arctan2(-az, ax)
    yaw[np.hypot(ax, az) < 1e-6] = np.nan
    return np.unwrap(_fill_nearest(yaw))


def _pelvis(positions: np.ndarray, joint_mask: np.ndarray) -> np.ndarray:
    """(T, 3) root trajectory: the pelvis, or the mid-hip point when a source lacks a pelvis."""
    if joint_mask[PELVIS]:
        return positions[:, PELVIS].astype(np.float64)
    hips = [JOINT_INDEX["l_hip"], JOINT_INDEX["r_hip"]]
    if joint_mask[hips].all():
        return positions[:, hips].astype(np.float64).mean(axis=1)
    return np.full((len(positions), 3), np.nan)


def root_motion(positions: np.ndarray, joint_mask: np.ndarray) -> np.ndarray:
    """(T, 19, 3) -> (T, 4): root x, y, z (metres, world) and heading yaw (radians).

    This is what `Tokenizer.decode` needs to put decoded poses back in the world."""
    return np.concatenate([_pelvis(positions, joint_mask),
                           heading_yaw(positions, joint_mask)[:, None]], axis=1)


def _rotate_y(v: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate (..., 3) vectors about +Y: R_y(angle) v; angle broadcasts against v[..., 0]."""
    c, s = np.cos(angle), np.sin(angle)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    return np.stack([c * x + s * z, y, -s * x + c * z], axis=-1)


def clip_features(positions: np.ndarray, joint_mask: np.ndarray,
                  fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(T, 19, 3) -> values (T, 58) float32 (NaN-free, 0 where invalid) and valid (T, 58) bool.

    Columns: 18 joints x (x, y, z) in REL_JOINTS order, then ROOT_NAMES."""
    t = len(positions)
    root = root_motion(positions, joint_mask)
    pelvis, yaw = root[:, :3], root[:, 3]
    rel_idx = [JOINT_INDEX[j] for j in REL_JOINTS]
    rel = _rotate_y(positions[:, rel_idx].astype(np.float64) - pelvis[:, None], -yaw[:, None])
    ok = joint_mask[rel_idx][None] & np.isfinite(rel).all(axis=-1)  # (T, 18)
    vel = np.zeros((t, 3))
    rate = np.zeros(t)
    if t > 1:
        vel[1:] = _rotate_y(np.diff(pelvis, axis=0), -yaw[1:]) * fps
        rate[1:] = np.diff(yaw) * fps
        vel[0], rate[0] = vel[1], rate[1]
    root_vals = np.stack([vel[:, 0], vel[:, 2], rate, pelvis[:, 1]], axis=1)
    root_ok = np.isfinite(root_vals)
    values = np.concatenate([rel.reshape(t, -1), root_vals], axis=1)
    valid = np.concatenate([np.repeat(ok, 3, axis=1), root_ok], axis=1)
    return np.where(valid, values, 0.0).astype(np.float32), valid


def compose_positions(values: np.ndarray, root: np.ndarray | None, fps: float) -> np.ndarray:
    """Features (T, 58) (physical units) + root (T, 4) or None -> positions (T, 19, 3) float32.

    With root None the trajectory is integrated from the decoded root motion, starting at the
    world origin facing +Z (drift grows with length; pass the true root to place the body)."""
    t = len(values)
    if root is None:
        r0 = ROOT_SLICE.start
        rate, vel = values[:, r0 + 2], values[:, r0:r0 + 2]
        yaw = np.concatenate([[0.0], np.cumsum(rate[1:]) / fps])
        step = _rotate_y(np.stack([vel[:, 0], np.zeros(t), vel[:, 1]], axis=1), yaw) / fps
        step[0] = 0.0
        pelvis = np.cumsum(step, axis=0)
        pelvis[:, 1] = values[:, r0 + 3]
    else:
        pelvis, yaw = root[:t, :3].astype(np.float64), root[:t, 3].astype(np.float64)
    rel = values[:, : 3 * len(REL_JOINTS)].reshape(t, len(REL_JOINTS), 3).astype(np.float64)
    out = np.empty((t, NUM_JOINTS, 3))
    out[:, PELVIS] = pelvis
    out[:, [JOINT_INDEX[j] for j in REL_JOINTS]] = _rotate_y(rel, yaw[:, None]) + pelvis[:, None]
    return out.astype(np.float32)


def to_parts(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(..., T, 58) -> per part (..., T, P, 16) values, (..., T, P, 16) loss mask and
    (..., T, P, 5) mask channels (1 where the joint is present); padding is 0 / masked."""
    pad = [(0, 0)] * (values.ndim - 1) + [(0, 1)]
    v, ok = np.pad(values, pad), np.pad(valid, pad)
    return v[..., PART_INDEX], ok[..., PART_INDEX], ok[..., PART_MASK_INDEX].astype(np.float32)


def from_parts(vals: np.ndarray) -> np.ndarray:
    """(..., T, P, 16) -> (..., T, 58): the inverse of to_parts for the values."""
    out = np.zeros(vals.shape[:-2] + (NUM_FEATURES + 1,), np.float32)
    out[..., PART_INDEX] = vals
    return out[..., :NUM_FEATURES]
