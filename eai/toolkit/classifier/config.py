"""ClassifierConfig: every knob of the MGST semantic classifier, with help text and validation."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from eai.toolkit.configs import config_from_dict


def _f(default: Any, help: str) -> Any:
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


BRANCHES = ("descriptors", "rocket")


@dataclass
class ClassifierConfig:
    """The clip-level emotion classifier of the MGST (semantic level).

    Two branches, each a linear model on label-free clip features, averaged:
    - descriptors: the kinematic descriptors, relative to the clip's action (content) reference
      when the training clips hold that action, -> standardised logistic regression;
    - rocket: MiniRocket-style random dilated convolutions (PPV pooling) over per-frame body-frame
      pose and velocity channels -> standardised ridge regression, softmax with a temperature.
    Hyperparameters given as candidate lists are chosen by an inner cross-validation on the
    training clips only (grouped by clip, so augmented copies never straddle a split). With
    clips of several datasets each head has shared weights plus a deviation per dataset, with
    each dataset's own standardisation and inner-CV choice (dataset_heads;
    eai.toolkit.classifier.heads.DomainHead).
    """

    branches: tuple[str, ...] = _f(BRANCHES, "Branches to train and average (descriptors, rocket)")
    seed: int = _f(0, "Seed of the random kernels, the augmentation and the inner CV")
    mirror: bool = _f(True, "Train on left/right mirrored copies and average each clip's scores "
                      "with its mirror image's (mirror-invariant predictions)")
    time_warps: tuple[float, ...] = _f((0.8, 1.25), "Time-warp factors of extra training copies "
                                       "(each also mirrored when mirror is on)")
    rotate_deg: float = _f(15.0, "Max random rotation about Y of each time-warped copy, degrees "
                           "(the features use the body's heading frame, so this only adds "
                           "heading-estimate noise)")
    action_reference: bool = _f(True, "Descriptors relative to the mean of the training clips of "
                                "the same dataset and action (label-free); clips of an action "
                                "unseen in training use a second model on the raw descriptors")
    dataset_reference: bool = _f(False, "Raw descriptors and rocket features relative to the "
                                 "mean of their dataset's training clips (label-free), so "
                                 "datasets recorded differently share one origin when trained "
                                 "together; clips of an unseen dataset use the mean of all. "
                                 "Off: on Bandai + sample data + Emotion-Gait it cost 1.3 "
                                 "points of Bandai accuracy (dataset_heads does not)")
    dataset_heads: bool = _f(True, "When the training clips come from several datasets, each "
                             "linear head learns shared weights plus a deviation per dataset "
                             "(feature augmentation, Daume III 2007), standardises each "
                             "dataset with its own statistics and chooses each dataset's "
                             "hyperparameters on its own validation clips; clips of an unseen "
                             "dataset use the shared weights. No effect on one dataset")
    min_reference_clips: int = _f(3, "Least training clips of an action for it to get a "
                                  "reference")
    descriptor_C: tuple[float, ...] = _f((0.03, 0.1, 0.3, 1.0), "Candidate inverse L2 "
                                         "strengths of the logistic regression (inner CV)")
    rocket_features: int = _f(9996, "MiniRocket features (rounded down to a multiple of 84)")
    rocket_window_s: float = _f(4.0, "Longest receptive field of the kernels, seconds")
    rocket_alphas: tuple[float, ...] = _f((1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0),
                                          "Candidate ridge strengths, relative to the mean "
                                          "feature variance (inner CV)")
    rocket_temperatures: tuple[float, ...] = _f((1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0),
                                                "Candidate softmax temperatures of the "
                                                "ridge scores (inner CV, least log-loss)")
    inner_folds: int = _f(4, "Folds of the inner cross-validation (0: no inner CV, take the "
                          "middle of each sorted candidate list)")
    fps: float = _f(30.0, "Frame rate the features assume; clips at another rate are resampled")
    threads: int = _f(1, "CPU threads for torch and BLAS while fitting and predicting (0: "
                      "leave the defaults); one is fastest for these small problems on a "
                      "shared machine")

    def __post_init__(self) -> None:
        for name in ("branches", "time_warps", "descriptor_C", "rocket_alphas",
                     "rocket_temperatures"):
            v = getattr(self, name)
            if isinstance(v, (str, int, float)):
                v = (v,)
            try:
                setattr(self, name, tuple(x if name == "branches" else float(x) for x in v))
            except (TypeError, ValueError):
                raise ValueError(f"ClassifierConfig.{name}={v!r}: must be a list of "
                                 f"{'names' if name == 'branches' else 'numbers'}") from None
        self.branches = tuple(str(b) for b in self.branches)
        self.validate()

    def validate(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"ClassifierConfig.{name}={getattr(self, name)!r}: {why}")

        if not self.branches or any(b not in BRANCHES for b in self.branches):
            raise bad("branches", f"choose one or more of {', '.join(BRANCHES)}")
        if len(set(self.branches)) != len(self.branches):
            raise bad("branches", "a branch is named twice")
        for name in ("seed", "min_reference_clips", "rocket_features", "inner_folds", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise bad(name, "must be a non-negative integer")
        if self.rocket_features < 84:
            raise bad("rocket_features", "at least 84 (one per kernel)")
        if self.inner_folds == 1:
            raise bad("inner_folds", "use 0 (no inner CV) or at least 2")
        for name in ("mirror", "action_reference", "dataset_reference", "dataset_heads"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, "must be true or false")
        if any(not (0.2 <= w <= 5.0) or w == 1.0 for w in self.time_warps):
            raise bad("time_warps", "factors must be in [0.2, 5] and not 1")
        if not (0.0 <= self.rotate_deg <= 180.0):
            raise bad("rotate_deg", "must be in [0, 180] degrees")
        for name in ("descriptor_C", "rocket_alphas", "rocket_temperatures"):
            v = getattr(self, name)
            if not v or any(not (x > 0 and math.isfinite(x)) for x in v):
                raise bad(name, "needs at least one candidate, each a positive number")
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise bad("fps", "must be a positive number")
        if not (9.0 / self.fps <= self.rocket_window_s <= 60.0):
            raise bad("rocket_window_s", "must be between 9 frames and 60 seconds")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClassifierConfig:
        return config_from_dict(cls, d)
