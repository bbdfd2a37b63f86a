"""Tokenizer figures: reconstruction error (MPJPE, mm) and codebook usage.

MPJPE: mean Euclidean distance, in millimetres, between true and reconstructed joints over every
valid (frame, joint) pair of the clips (frames weigh equally), the pelvis excluded (it is the true
root, so its error is 0 by construction). Reconstructed positions = decoded pelvis-relative pose,
rotated by the true heading, on the true root (`Tokenizer.decode(codes, root_motion)`).
The mean-pose baseline puts the training set's mean pose (in the heading frame) on the same root.
Root motion (in the torso code) is scored apart: mean absolute error of the decoded horizontal
velocity (m/s, vector difference), yaw rate (degrees/s) and pelvis height (mm), over all frames,
and of each clip's mean horizontal speed (m/s; per-frame velocity carries the gait's sway).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from eai.toolkit.clip import Clip
from eai.toolkit.skeleton import JOINT_INDEX
from eai.toolkit.tokenizer.features import (
    NUM_FEATURES,
    PART_JOINTS,
    PART_NAMES,
    ROOT_SLICE,
    clip_features,
    compose_positions,
    root_motion,
)

_PART_OF = {JOINT_INDEX[j]: p for p, joints in enumerate(PART_JOINTS) for j in joints}


def _errors(true: np.ndarray, pred: np.ndarray,
            joint_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint sums of error (mm) and counts of valid frames, (19,) each, pelvis excluded."""
    ok = joint_mask[None] & np.isfinite(true).all(-1)
    ok[:, JOINT_INDEX["pelvis"]] = False
    err = np.where(ok, np.linalg.norm(np.nan_to_num(true - pred), axis=-1), 0.0) * 1000.0
    return err.sum(0), ok.sum(0)


def _summary(sums: np.ndarray, counts: np.ndarray) -> dict[str, Any]:
    by_part = {}
    for p, name in enumerate(PART_NAMES):
        idx = [j for j, q in _PART_OF.items() if q == p]
        n = counts[idx].sum()
        by_part[name] = round(float(sums[idx].sum() / n), 2) if n else None
    n = counts.sum()
    return {"mpjpe_mm": round(float(sums.sum() / n), 2) if n else None, "by_part": by_part,
            "frames_joints": int(n)}


def reconstruction_error(tokenizer, clips: Sequence[Clip],
                         codes: Sequence[np.ndarray] | None = None) -> dict[str, Any]:
    """MPJPE of the tokenizer's reconstruction and of the mean-pose baseline on `clips`."""
    codes = codes if codes is not None else tokenizer.encode_many(clips)
    sums, counts = np.zeros(19), np.zeros(19, dtype=np.int64)
    base_sums = np.zeros(19)
    root_err, root_n, clip_speed = np.zeros(3), 0, []
    mean = np.asarray(tokenizer.mean, np.float32)
    r0 = ROOT_SLICE.start
    for clip, c in zip(clips, codes):
        true, ok = clip_features(clip.positions, clip.joint_mask, clip.fps)
        dec = tokenizer.decode_features(c)[: len(true)]
        good = ok[:, r0:].all(1)
        d = np.abs(dec[good, r0:] - true[good, r0:])
        root_err += [np.hypot(d[:, 0], d[:, 1]).sum(), d[:, 2].sum(), d[:, 3].sum()]
        root_n += int(good.sum())
        speed = [np.hypot(f[good, r0], f[good, r0 + 1]).mean() for f in (dec, true)]
        clip_speed.append(abs(speed[0] - speed[1]) if good.any() else np.nan)
        root = root_motion(clip.positions, clip.joint_mask)
        s, n = _errors(clip.positions, tokenizer.decode(c, root), clip.joint_mask)
        sums += s
        counts += n
        base = compose_positions(np.broadcast_to(mean, (clip.num_frames, NUM_FEATURES)), root,
                                 clip.fps)
        base_sums += _errors(clip.positions, base, clip.joint_mask)[0]
    out = _summary(sums, counts)
    out["mean_pose_baseline_mm"] = _summary(base_sums, counts)["mpjpe_mm"]
    e = root_err / max(root_n, 1)
    out["root"] = {"velocity_mps": round(float(e[0]), 3),
                   "yaw_rate_dps": round(float(np.degrees(e[1])), 1),
                   "height_mm": round(float(e[2]) * 1000, 1),
                   "clip_mean_speed_mps": round(float(np.nanmean(clip_speed)), 3)
                   if len(clip_speed) and not np.isnan(clip_speed).all() else None}
    return out


def codebook_usage(codes: Sequence[np.ndarray], num_codes: int) -> dict[str, Any]:
    """Counts per code (all parts together and per part), used/dead codes and perplexity
    (exp of the entropy of the code distribution; num_codes if every code were equally used)."""
    per_part = np.zeros((len(PART_NAMES), num_codes), dtype=np.int64)
    for c in codes:
        for p in range(len(PART_NAMES)):
            per_part[p] += np.bincount(c[:, p], minlength=num_codes)
    counts = per_part.sum(0)

    def perplexity(k: np.ndarray) -> float:
        prob = k[k > 0] / max(k.sum(), 1)
        return float(np.exp(-(prob * np.log(prob)).sum())) if len(prob) else 0.0

    used = int((counts > 0).sum())
    return {"tokens": int(counts.sum()), "num_codes": num_codes, "used_codes": used,
            "dead_codes": num_codes - used, "perplexity": round(perplexity(counts), 2),
            "by_part": {name: {"used_codes": int((per_part[p] > 0).sum()),
                               "perplexity": round(perplexity(per_part[p]), 2)}
                        for p, name in enumerate(PART_NAMES)},
            "counts": per_part.tolist()}
