"""A trained spatio-temporal tokenizer: clips -> codes -> token text, and codes -> positions.

Token text (read by the language model; see docs/tokenizer.md):

    <motion> <ds_NAME> <semantic> <sem_root_speed_mean_high> ... </semantic> <t> <st_a> <st_b>
    <st_c> <st_d> <st_e> <t> ... </motion>

one `<t>` per time step (4 frames = 133 ms at 30 fps), then one code per body part in the fixed
order torso (with root motion), left arm, right arm, left leg, right leg. Codes share one
vocabulary `<st_0>` ... `<st_{N-1}>` (N = prod(levels), 512 by default). `<ds_NAME>` names the
clip's dataset (`<ds_other>` for a dataset the tokenizer was not trained on); it is left out
with dataset_tag=False. The `<semantic>` block (the semantic level) holds one
`<sem_NAME_LEVEL>` token per computable kinematic descriptor, LEVEL low / typical / high against
the training clips of the same action (`DescriptorLevels`); it is left out with semantic=False,
and absent for tokenizers saved without descriptor levels (tokenizer.json before they existed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eai.toolkit.clip import Clip
from eai.toolkit.dataset import read_versioned_json
from eai.toolkit.descriptors import DescriptorLevels, compute_descriptors
from eai.toolkit.tokenizer.config import TokenizerConfig
from eai.toolkit.tokenizer.emotion import (
    CLASSIFIER_DIR,
    embedding_token,
    nearest_codes,
)
from eai.toolkit.tokenizer.features import (
    NUM_PARTS,
    PART_MASK_WIDTH,
    PART_NAMES,
    PART_WIDTH,
    clip_features,
    compose_positions,
    from_parts,
    root_motion,
    to_parts,
)
from eai.toolkit.tokenizer.model import PartCodec

WEIGHTS = "tokenizer.safetensors"
CONFIG = "tokenizer.json"
FORMAT_VERSION = 1
MOTION_START, MOTION_END, STEP, OTHER_DATASET = "<motion>", "</motion>", "<t>", "<ds_other>"
SEMANTIC_START, SEMANTIC_END = "<semantic>", "</semantic>"
LEVELS = ("low", "typical", "high")


def semantic_token(name: str, level: str) -> str:
    return f"<sem_{name}_{level}>"


def dataset_tag(name: str) -> str:
    """`<ds_NAME>` with NAME lower-cased and anything but [a-z0-9._-] replaced by '-'."""
    return "<ds_" + re.sub(r"[^a-z0-9._-]+", "-", name.lower()) + ">"


def build_model(config: TokenizerConfig) -> PartCodec:
    return PartCodec(NUM_PARTS, PART_WIDTH + PART_MASK_WIDTH, PART_WIDTH, config.hidden,
                     config.levels, config.downsample, config.depth)


class Tokenizer:
    """A codec plus the normalisation it was trained with. Build with `load_tokenizer(dir)`."""

    def __init__(self, config: TokenizerConfig, model: PartCodec, mean: np.ndarray,
                 std: np.ndarray, datasets: Sequence[str] = (), meta: dict[str, Any] | None = None,
                 levels: DescriptorLevels | None = None):
        self.config, self.model = config, model.eval()
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.datasets = list(datasets)  # dataset names it was trained on (their tags exist)
        self.meta = meta or {}  # tokenizer.json as loaded (report, split, provenance)
        self.levels = levels  # descriptor levels (semantic tokens); None: no semantic tokens
        # The emotion level (tokenizer.json "emotion"): classifier in directory/classifier/.
        self.emotion: dict[str, Any] = (meta or {}).get("emotion") or {"trained": False}
        self.directory: Path | None = None
        self._classifier = None

    @property
    def factor(self) -> int:
        return self.model.factor

    @property
    def num_codes(self) -> int:
        return self.model.fsq.num_codes

    # -- clips -> codes -------------------------------------------------------------------
    def _inputs(self, clip: Clip) -> np.ndarray:
        """(T4 * factor, P * (16 + 5)) model input, padded to a whole number of steps by
        repeating the last frame."""
        if abs(clip.fps - self.config.fps) > 1e-3:
            raise ValueError(f"{clip.clip_id}: {clip.fps:g} fps, the tokenizer works at "
                             f"{self.config.fps:g} fps (convert with `eai convert --fps "
                             f"{self.config.fps:g}`)")
        if clip.num_frames == 0:
            raise ValueError(f"{clip.clip_id}: the clip has no frames")
        values, valid = clip_features(clip.positions, clip.joint_mask, clip.fps)
        values = np.where(valid, (values - self.mean) / self.std, 0.0).astype(np.float32)
        n = -(-len(values) // self.factor) * self.factor
        idx = np.minimum(np.arange(n), len(values) - 1)
        vals, _, chan = to_parts(values[idx], valid[idx])
        return np.concatenate([vals, chan], axis=-1).reshape(n, -1)

    def encode_many(self, clips: Iterable[Clip], batch_frames: int = 8192) -> list[np.ndarray]:
        """Codes of many clips, in input order: each (ceil(T / 4), 5) int64. Clips are sorted by
        length and batched (up to batch_frames padded frames), which is what makes it fast;
        time masks make the codes independent of the batching."""
        inputs = [self._inputs(c) for c in clips]
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
        out: list[np.ndarray] = [None] * len(inputs)  # type: ignore[list-item]
        i = 0
        with torch.inference_mode():
            while i < len(order):
                j = i + 1
                while j < len(order) and len(inputs[order[j]]) * (j - i + 1) <= batch_frames:
                    j += 1
                batch = [inputs[k] for k in order[i:j]]
                t = len(batch[-1])
                x = np.zeros((len(batch), t, batch[0].shape[1]), np.float32)
                for b, a in enumerate(batch):
                    x[b, : len(a)] = a
                lengths = torch.tensor([len(a) for a in batch])
                _, codes = self.model.encode(torch.from_numpy(x).transpose(1, 2), lengths)
                codes = codes.numpy()
                for b, k in enumerate(order[i:j]):
                    out[k] = np.ascontiguousarray(codes[b, :, : len(batch[b]) // self.factor].T)
                i = j
        return out

    def encode(self, clip: Clip) -> np.ndarray:
        """(T, 19, 3) clip -> (ceil(T / 4), 5) int64 codes, parts in PART_NAMES order."""
        return self.encode_many([clip])[0]

    # -- codes -> motion ------------------------------------------------------------------
    def decode_features(self, codes: np.ndarray) -> np.ndarray:
        """(S, 5) codes -> (S * 4, 58) features in physical units (metres, m/s, rad/s)."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or codes.shape[1] != NUM_PARTS:
            raise ValueError(f"codes must have shape (steps, {NUM_PARTS}), got {codes.shape}")
        if codes.size and (codes.min() < 0 or codes.max() >= self.num_codes):
            raise ValueError(f"codes must lie in [0, {self.num_codes}), got {codes.min()}.."
                             f"{codes.max()}")
        with torch.inference_mode():
            q = self.model.fsq.from_codes(torch.from_numpy(codes.T.copy()))[None]
            y = self.model.decode(q, torch.tensor([len(codes) * self.factor]))[0]
        parts = y.reshape(NUM_PARTS, PART_WIDTH, -1).permute(2, 0, 1).numpy()
        return from_parts(parts) * self.std + self.mean

    def decode(self, codes: np.ndarray, root_motion: np.ndarray | None = None,
               num_frames: int | None = None) -> np.ndarray:
        """(S, 5) codes -> positions (T, 19, 3) float32, metres.

        root_motion: (T, 4) root x, y, z and heading yaw (`features.root_motion`, or
        `Tokenizer.root_motion(clip)`): the decoded pelvis-relative pose is placed on that true
        root, and T = len(root_motion). None: the root is integrated from the decoded root
        motion (starting at the origin, facing +Z) and T = num_frames or S * 4."""
        values = self.decode_features(codes)
        t = len(root_motion) if root_motion is not None else (num_frames or len(values))
        if t > len(values):
            raise ValueError(f"{t} frames asked for, the codes cover {len(values)}")
        return compose_positions(values[:t], root_motion, self.config.fps)

    @staticmethod
    def root_motion(clip: Clip) -> np.ndarray:
        return root_motion(clip.positions, clip.joint_mask)

    def reconstruct(self, clip: Clip) -> np.ndarray:
        """Encode and decode a clip on its true root: (T, 19, 3), NaN where the clip is."""
        pos = self.decode(self.encode(clip), self.root_motion(clip))
        return np.where(np.isnan(clip.positions) | ~clip.joint_mask[None, :, None], np.nan, pos)

    # -- text -----------------------------------------------------------------------------
    def dataset_token(self, name: str) -> str:
        tag = dataset_tag(name)
        return tag if tag in {dataset_tag(d) for d in self.datasets} else OTHER_DATASET

    def semantic_tokens(self, clip: Clip) -> list[str]:
        """`<sem_NAME_LEVEL>` for each descriptor computable on the clip (NaN ones skipped), in
        the levels' descriptor order; levels are relative to the clip's action where the
        training set had enough clips of it, else to all training clips. [] without levels."""
        if self.levels is None:
            return []
        values = compute_descriptors(clip).values
        return [semantic_token(name, level)
                for name, level in self.levels.levels(values, group=clip.action).items()
                if level is not None]

    # -- emotion level ----------------------------------------------------------------------
    @property
    def has_emotion_level(self) -> bool:
        return bool(self.emotion.get("trained")) and self.directory is not None

    @property
    def classifier(self):
        """The MGST emotion classifier trained with this tokenizer (loaded on first use)."""
        if not self.has_emotion_level:
            raise ValueError("this tokenizer has no emotion classifier: "
                             f"{self.emotion.get('reason', 'it was not trained with one')}")
        if self._classifier is None:
            from eai.toolkit.classifier import load_classifier
            self._classifier = load_classifier(self.directory / CLASSIFIER_DIR)
        return self._classifier

    def emotion_probabilities(self, clips: Sequence[Clip]) -> tuple[np.ndarray, list[str]]:
        """(n, C) emotion probabilities of the classifier head, and the C emotion names."""
        return self.classifier.predict_proba(list(clips)), list(self.classifier.classes)

    def embedding_tokens(self, clips: Sequence[Clip]) -> list[str]:
        """One `<emb_K>` per clip: the nearest code of the learned clip embedding."""
        codebook = np.asarray(self.emotion["embedding_codebook"])
        codes = nearest_codes(self.classifier.embed(list(clips)), codebook)
        return [embedding_token(k) for k in codes]

    def code_emotions(self) -> tuple[np.ndarray, list[str]]:
        """(K, C) emotion probabilities of each `<emb_K>` code centre (the classifier's: the
        mean of its branches' softmaxes of the centre's class scores), and the C emotions."""
        codebook = np.asarray(self.emotion["embedding_codebook"], dtype=np.float64)
        classes = list(self.emotion["classes"])
        scores = codebook.reshape(len(codebook), -1, len(classes))  # (K, branches, C)
        e = np.exp(scores - scores.max(axis=2, keepdims=True))
        return (e / e.sum(axis=2, keepdims=True)).mean(axis=1), classes

    def codes_text(self, codes: np.ndarray, dataset: str | None = None, sep: str = " ",
                   semantic: Sequence[str] | None = None) -> str:
        """Token text of (S, 5) codes (see the module docstring); dataset None: no tag;
        semantic: the clip's `semantic_tokens` for a `<semantic>` block (None: no block)."""
        tokens = [MOTION_START] + ([self.dataset_token(dataset)] if dataset is not None else [])
        if semantic is not None:
            tokens += [SEMANTIC_START, *semantic, SEMANTIC_END]
        for step in np.asarray(codes):
            tokens.append(STEP)
            tokens.extend(f"<st_{int(c)}>" for c in step)
        tokens.append(MOTION_END)
        return sep.join(tokens)

    def tokens_text(self, clip: Clip, dataset_tag: bool = True, sep: str = " ",
                    semantic: bool = True, spatio_temporal: bool = True) -> str:
        """The clip's token text; semantic=False (or a tokenizer without descriptor levels)
        leaves out the `<semantic>` block, spatio_temporal=False the `<t>` steps."""
        sem = self._semantic_block(clip) if semantic else None
        codes = self.encode(clip) if spatio_temporal else np.zeros((0, len(PART_NAMES)), int)
        return self.codes_text(codes, clip.dataset if dataset_tag else None, sep, sem)

    def semantic_text(self, clip: Clip, sep: str = " ") -> str:
        """The `<semantic>` block alone ("" for a tokenizer without descriptor levels): for
        prompt templates that place it apart from the motion (a `{semantic}` placeholder)."""
        sem = self._semantic_block(clip)
        return "" if sem is None else sep.join([SEMANTIC_START, *sem, SEMANTIC_END])

    def _semantic_block(self, clip: Clip) -> list[str] | None:
        """The descriptor-level tokens and, last, the clip-embedding code; None without levels."""
        if self.levels is None:
            return None
        sem = self.semantic_tokens(clip)
        return sem + self.embedding_tokens([clip]) if self.has_emotion_level else sem

    def vocabulary(self) -> list[str]:
        """Every token string tokens_text can produce (what an LM must add), in a fixed order."""
        tags = sorted({dataset_tag(d) for d in self.datasets} | {OTHER_DATASET})
        sem = [] if self.levels is None else [SEMANTIC_START, SEMANTIC_END] + [
            semantic_token(n, lv) for n in self.levels.names for lv in LEVELS]
        if sem and self.emotion.get("trained"):
            sem += [embedding_token(k) for k in range(len(self.emotion["embedding_codebook"]))]
        return ([MOTION_START, MOTION_END, STEP] + tags
                + [f"<st_{i}>" for i in range(self.num_codes)] + sem)

    @property
    def part_names(self) -> tuple[str, ...]:
        return PART_NAMES


def load_tokenizer(directory: str | Path) -> Tokenizer:
    """Load `tokenizer.json` + `tokenizer.safetensors` written by `train_tokenizer`."""
    from safetensors.torch import load_file

    directory = Path(directory)
    meta = read_versioned_json(directory / CONFIG, "format_version", FORMAT_VERSION,
                               f"{directory}: no {CONFIG}; train one with `eai tokenizer train "
                               f"DATASET -o {directory}`")
    config = TokenizerConfig.from_dict(meta["config"])
    model = build_model(config)
    model.load_state_dict(load_file(str(directory / WEIGHTS)))
    norm = meta["normalisation"]
    levels = meta.get("descriptor_levels")  # absent in tokenizers made before semantic tokens
    tok = Tokenizer(config, model, np.array(norm["mean"]), np.array(norm["std"]),
                    meta.get("dataset_names", []), meta,
                    DescriptorLevels.from_dict(levels) if levels else None)
    tok.directory = directory
    return tok
