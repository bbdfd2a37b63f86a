"""Label-free reference points: mean features of the training clips that share a key.

A clip's features minus its reference say how it differs from the typical clip of its kind:
with key (dataset, action), "slow" means slow for that movement in that recording; with key
dataset, datasets recorded differently share one origin. References use the test-time views
(the clip and its mirror image) of training clips, never labels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from eai.toolkit.clip import Clip


def action_key(clip: Clip) -> str | None:
    return None if clip.action is None else f"{clip.dataset}\t{clip.action}"


def dataset_key(clip: Clip) -> str | None:
    return clip.dataset


KEYS: dict[str, Callable[[Clip], str | None]] = {"action": action_key, "dataset": dataset_key}


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    ok = np.isfinite(x)
    n = ok.sum(0)
    return np.where(n > 0, np.where(ok, x, 0.0).sum(0) / np.maximum(n, 1), np.nan)


@dataclass
class References:
    """means[key] (F,); fallback (F,) or None: what clips with an unknown key are relative to
    (None: they have no reference, and rows() gives NaN for them)."""

    kind: str  # a KEYS name
    means: dict[str, np.ndarray]
    fallback: np.ndarray | None = None

    @classmethod
    def fit(cls, kind: str, clips: Sequence[Clip], x: np.ndarray, group: np.ndarray,
            tta: np.ndarray, min_clips: int = 1, fallback: bool = False) -> References:
        """x (n, F) rows of views; group (n,) index into clips; tta (n,) test-time views."""
        key = KEYS[kind]
        members: dict[str, list[int]] = {}
        for i, c in enumerate(clips):
            k = key(c)
            if k is not None:
                members.setdefault(k, []).append(i)
        means = {k: _nanmean_rows(x[np.isin(group, m) & tta])
                 for k, m in members.items() if len(m) >= min_clips}
        return cls(kind, means, _nanmean_rows(x[tta]) if fallback else None)

    def rows(self, clips: Sequence[Clip], group: np.ndarray, width: int) -> np.ndarray:
        """(n, width) reference of every row's clip; NaN rows where there is none."""
        key = KEYS[self.kind]
        nan = np.full(width, np.nan)
        default = self.fallback if self.fallback is not None else nan
        per_clip = [self.means.get(key(c), default) if key(c) is not None else default
                    for c in clips]
        return np.stack(per_clip)[group] if len(per_clip) else np.zeros((0, width))

    def state(self, prefix: str) -> tuple[dict[str, np.ndarray], dict]:
        keys = sorted(self.means)
        arrays = {}
        if keys:
            arrays[f"{prefix}.means"] = np.stack([self.means[k] for k in keys])
        if self.fallback is not None:
            arrays[f"{prefix}.fallback"] = self.fallback
        return arrays, {"kind": self.kind, "keys": keys}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], prefix: str, meta: dict) -> References:
        keys = meta["keys"]
        means = dict(zip(keys, arrays[f"{prefix}.means"])) if keys else {}
        return cls(meta["kind"], means, arrays.get(f"{prefix}.fallback"))
