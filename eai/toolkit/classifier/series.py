"""Per-frame channels of a clip for the convolutional branch: pose and motion in the body's frame.

Conventions: the body's heading frame (`kinematics.heading_axes`: left, up, forward, smoothed
over 0.5 s) so a channel means the same whatever the walking direction, and rotation about Y
changes nothing; lengths per leg length (thigh + shin) so bodies of different sizes compare.
Channels, (C, T) with C = 77:
- 54: every non-root joint minus the pelvis, (left, up, forward) components;
- 1: pelvis height;
- 3: pelvis velocity (left, up, forward), per second;
- 1: heading yaw rate (in 90 degrees per second);
- 18: speed of every non-root joint relative to the pelvis, per second.
Missing joints (joint_mask false) and gaps are NaN; the consumer fills them after
standardisation (with the training mean). A mirrored clip negates the `left` components and
swaps left/right channels, which is what mirror_clip does to the positions.
"""

from __future__ import annotations

import math

import numpy as np

from eai.toolkit import kinematics as K
from eai.toolkit.clip import Clip
from eai.toolkit.skeleton import CANONICAL_JOINTS, JOINT_INDEX, NUM_JOINTS

PELVIS = JOINT_INDEX["pelvis"]
REL_JOINTS = tuple(i for i in range(NUM_JOINTS) if i != PELVIS)
CHANNEL_NAMES: tuple[str, ...] = (
    *(f"{CANONICAL_JOINTS[j]}_{ax}" for j in REL_JOINTS for ax in ("left", "up", "forward")),
    "pelvis_height", "pelvis_v_left", "pelvis_v_up", "pelvis_v_forward", "yaw_rate",
    *(f"{CANONICAL_JOINTS[j]}_rel_speed" for j in REL_JOINTS),
)
NUM_CHANNELS = len(CHANNEL_NAMES)
DEFAULT_LEG = 0.8  # metres: stands in when no leg can be measured (leg joints missing)


def resample(positions: np.ndarray, fps: float, target_fps: float) -> np.ndarray:
    """(T, J, 3) positions linearly resampled from fps to target_fps (same duration)."""
    t = positions.shape[0]
    if t < 2 or abs(fps - target_fps) < 1e-6:
        return positions
    n = max(2, round((t - 1) * target_fps / fps) + 1)
    src = np.linspace(0.0, t - 1, n)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, t - 1)
    w = (src - i0)[:, None, None]
    return positions[i0] * (1 - w) + positions[i1] * w


def frame_channels(clip: Clip, fps: float = 30.0) -> np.ndarray:
    """(C, T) float32 per-frame channels (see the module docstring), at `fps` frames/s."""
    P = resample(clip.positions.astype(np.float64), clip.fps, fps)
    T = P.shape[0]
    mask = clip.joint_mask
    left, fwd = K.heading_axes(P, mask, fps)
    if np.isnan(left).all():  # no hips and no shoulders: fall back to the world axes
        left = np.tile([1.0, 0.0, 0.0], (T, 1))
        fwd = np.tile([0.0, 0.0, 1.0], (T, 1))
    leg = K.leg_length(P)
    if not (math.isfinite(leg) and leg > 0.1):
        trunk = K.segment_length(P, "pelvis", "neck")
        leg = trunk / 0.52 if math.isfinite(trunk) and trunk > 0.05 else DEFAULT_LEG
    pelvis = P[:, PELVIS]
    rel = list(REL_JOINTS)
    local = K.to_heading_frame(P[:, rel] - pelvis[:, None], left, fwd) / leg  # (T, 18, 3)
    if T >= 4:
        vel = K.savgol(P, fps, window_s=0.2, polyorder=2, deriv=1)
        yaw_rate = np.gradient(K.yaw_deg(fwd)) * fps / 90.0
    else:
        vel = np.zeros_like(P)
        yaw_rate = np.zeros(T)
    hvel = K.to_heading_frame(vel, left, fwd) / leg  # (T, 19, 3)
    rel_speed = K.norm(hvel[:, rel] - hvel[:, PELVIS, None])  # (T, 18)
    x = np.concatenate([local.reshape(T, -1), pelvis[:, 1:2] / leg, hvel[:, PELVIS],
                        yaw_rate[:, None], rel_speed], axis=1)
    x[~np.isfinite(x)] = math.nan
    return np.ascontiguousarray(x.T, dtype=np.float32)
