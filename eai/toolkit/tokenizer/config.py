"""TokenizerConfig: every knob of `eai tokenizer train`, with help text and validation."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from eai.toolkit.configs import config_from_dict


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TokenizerConfig:
    """Spatio-temporal MGST tokenizer: architecture, training and evaluation settings."""

    levels: tuple[int, ...] = _f((8, 8, 8), "FSQ levels per latent channel; the vocabulary "
                                 "has prod(levels) codes (8,8,8 = 512)")
    hidden: int = _f(64, "Convolution channels per body part")
    depth: int = _f(2, "Residual blocks per time resolution (dilations 1, 3, 9, ...)")
    downsample: int = _f(2, "Stride-2 convolutions: one token per 2**downsample frames (2: x4)")
    fps: float = _f(30.0, "Frame rate the tokenizer works at (the datasets' frame rate)")
    steps: int = _f(2000, "Optimiser steps")
    batch_size: int = _f(32, "Crops per step")
    crop_frames: int = _f(64, "Frames per training crop (a multiple of the downsampling)")
    lr: float = _f(2e-3, "Peak AdamW learning rate (linear warm-up, cosine decay)")
    weight_decay: float = _f(1e-4, "AdamW weight decay")
    root_weight: float = _f(2.0, "Loss weight of each root-motion value (pelvis velocity, yaw "
                             "rate, height) relative to a pose value: the torso code carries "
                             "both, and speed matters for emotion")
    mirror_prob: float = _f(0.5, "Probability of a left/right mirrored crop")
    rotate_deg: float = _f(10.0, "Max random rotation of the body about Y relative to its "
                           "heading frame, degrees (heading-estimate noise)")
    joint_dropout: float = _f(0.05, "Probability per crop of hiding one random joint (teaches "
                              "the codec the masks of datasets with missing joints)")
    held_out_fraction: float = _f(0.1, "Fraction of each dataset's clips held out for MPJPE")
    seed: int = _f(0, "Seed of the split, the crops and the initialisation")
    threads: int = _f(1, "torch CPU threads during training (0: torch's default). One is "
                      "fastest for this small model on a shared 2-core machine: with two, "
                      "each op waits for a core another process holds (up to 30x slower)")

    def __post_init__(self) -> None:
        try:
            self.levels = tuple(int(v) for v in self.levels)
        except (TypeError, ValueError):
            raise ValueError(f"TokenizerConfig.levels={self.levels!r}: must be integers, "
                             f"e.g. 8,8,8") from None
        self.validate()

    def validate(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"TokenizerConfig.{name}={getattr(self, name)!r}: {why}")

        if not self.levels or any(v < 2 for v in self.levels):
            raise bad("levels", "need at least one level count, each >= 2")
        if math.prod(self.levels) > 65536:
            raise bad("levels", "more than 65,536 codes; use fewer or smaller levels")
        for name in ("hidden", "depth", "downsample", "steps", "batch_size", "crop_frames"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise bad(name, "must be a positive integer")
        if self.downsample > 4:
            raise bad("downsample", "at most 4 (one token per 16 frames)")
        factor = 2 ** self.downsample
        if self.crop_frames < factor or self.crop_frames % factor:
            raise bad("crop_frames", f"must be a positive multiple of {factor} (2**downsample)")
        if not self.fps > 0:
            raise bad("fps", "must be > 0")
        if not 0 < self.lr < 1:
            raise bad("lr", "must be in (0, 1)")
        if not 0 < self.root_weight <= 100:
            raise bad("root_weight", "must be in (0, 100]")
        if not 0 <= self.weight_decay < 1:
            raise bad("weight_decay", "must be in [0, 1)")
        for name in ("mirror_prob", "joint_dropout"):
            if not 0 <= getattr(self, name) <= 1:
                raise bad(name, "must be a probability in [0, 1]")
        if not 0 <= self.rotate_deg <= 180:
            raise bad("rotate_deg", "must be in [0, 180] degrees")
        if not 0 <= self.held_out_fraction < 1:
            raise bad("held_out_fraction", "must be in [0, 1)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise bad("seed", "must be an integer")
        if not isinstance(self.threads, int) or self.threads < 0:
            raise bad("threads", "must be >= 0")

    @property
    def num_codes(self) -> int:
        return math.prod(self.levels)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["levels"] = list(self.levels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenizerConfig:
        return config_from_dict(cls, d)

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata["help"] for f in fields(cls)}
