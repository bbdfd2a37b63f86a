"""MGSTClassifier: the learned clip-level embedding and emotion head of the MGST semantic level.

A Method for `eai evaluate` (name "mgst"): fit(clips, labels, classes), predict_proba(clips),
plus embed(clips) and save/load. Each branch (see ClassifierConfig) turns a clip into class
scores; a clip's scores are averaged over its views at test time (the clip and its mirror
image), so the prediction of a clip and of its mirror image are the same. The embedding is the
concatenation of the branches' centred class scores, (n, C * branches): the label-trained
directions of each linear head (a linear head has at most C - 1 of them); the emotion
probabilities are the mean of the branches' softmaxes of those scores.

Training views: the clip, its mirror image (left/right joints swapped, label kept), and per
time-warp factor a warped copy and a mirrored warped copy, each rotated about Y by a random
angle. View features are label-free and deterministic per (clip, seed), so they are cached by
clip id and content between folds.

Content reference (descriptors branch): the descriptors of a clip minus the mean over the
training clips of the same dataset and action (the "typical" value for that movement), as the
descriptor levels are relative to a per-action population. A clip whose action has no
reference (unseen in training) goes to a second head trained on the raw descriptors.

Several datasets: every head then has shared weights plus a deviation per dataset (heads.
DomainHead), its own feature statistics and its own hyperparameters, and each clip is scored
with its dataset's weights (docs/evaluate.md).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from eai.toolkit.augment import mirror_clip, rotate_y, time_warp
from eai.toolkit.classifier.config import ClassifierConfig
from eai.toolkit.classifier.heads import (
    DomainHead,
    LinearHead,
    Rows,
    fit_logreg,
    fit_ridge,
    softmax,
)
from eai.toolkit.classifier.reference import References
from eai.toolkit.classifier.rocket import MiniRocket
from eai.toolkit.classifier.series import CHANNEL_NAMES, frame_channels
from eai.toolkit.clip import Clip

WEIGHTS_FILE = "classifier.safetensors"
CONFIG_FILE = "classifier.json"


@contextmanager
def _threads(n: int) -> Iterator[None]:
    """At most n torch and BLAS threads inside (0: leave them as they are). On a busy machine
    the default thread pools wait for cores other processes hold (10-50x slower solves)."""
    import torch
    from threadpoolctl import threadpool_limits

    if not n:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(old)


class MGSTClassifier:
    """Clip -> emotion probabilities and a label-trained embedding (see the module docstring)."""

    name = "mgst"

    def __init__(self, config: ClassifierConfig | None = None, *, cache: bool = True):
        self.config = config or ClassifierConfig()
        self.cache: dict[tuple, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None
        self.classes: list[str] = []
        self.info: dict = {}
        self._fitted = False

    # --- views and their features -------------------------------------------------------------
    def _view_specs(self, train: bool) -> list[tuple[bool, float]]:
        """(mirrored, time-warp factor) per view; the first 1-2 are the test-time views."""
        cfg = self.config
        specs = [(False, 1.0)] + ([(True, 1.0)] if cfg.mirror else [])
        if train:
            for w in cfg.time_warps:
                specs += [(False, w)] + ([(True, w)] if cfg.mirror else [])
        return specs

    def _make_view(self, clip: Clip, index: int, mirrored: bool, warp: float) -> Clip:
        v = mirror_clip(clip) if mirrored else clip
        if warp != 1.0:
            v = time_warp(v, warp)
            if self.config.rotate_deg > 0:
                rng = np.random.default_rng(
                    [self.config.seed, zlib.crc32(clip.clip_id.encode()), index])
                v = rotate_y(v, float(rng.uniform(-1, 1) * self.config.rotate_deg))
        return v

    def _view_features(self, clips: Sequence[Clip], train: bool
                       ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, np.ndarray]:
        """(descriptors (n, D), channel series, source clip index (n,), view index (n,)); a
        clip's rows are consecutive, its unaugmented view first."""
        from eai.toolkit.descriptors import descriptor_matrix

        specs = self._view_specs(train)
        keys, todo = [], {}
        for ci, clip in enumerate(clips):
            fp = (clip.clip_id, clip.num_frames, float(clip.fps),
                  zlib.crc32(np.ascontiguousarray(clip.positions).tobytes()),
                  self.config.seed, self.config.rotate_deg, self.config.fps)
            for vi, spec in enumerate(specs):
                k = (*fp, spec)
                keys.append((k, ci, vi))
                if (self.cache is None or k not in self.cache) and k not in todo:
                    todo[k] = (clip, vi, spec)
        computed = {}
        if todo:
            views = [self._make_view(c, vi, *spec) for c, vi, spec in todo.values()]
            desc = descriptor_matrix(views)
            for k, v, d in zip(todo, views, desc):
                computed[k] = (d, frame_channels(v, self.config.fps))
            if self.cache is not None:
                self.cache.update(computed)
        store = self.cache if self.cache is not None else computed
        rows = [store[k] for k, _, _ in keys]
        desc = np.stack([r[0] for r in rows]).astype(np.float64)
        series = [r[1] for r in rows]
        group = np.array([ci for _, ci, _ in keys])
        view = np.array([vi for _, _, vi in keys])
        return desc, series, group, view

    # --- fitting --------------------------------------------------------------------------------
    def fit(self, clips: Sequence[Clip], labels: np.ndarray, classes: list[str]) -> None:
        with _threads(self.config.threads):
            self._fit(clips, labels, classes)

    def _fit(self, clips: Sequence[Clip], labels: np.ndarray, classes: list[str]) -> None:
        cfg = self.config
        labels = np.asarray(labels, dtype=int)
        if len(clips) != len(labels):
            raise ValueError(f"fit: {len(clips)} clips but {len(labels)} labels")
        if len(clips) < 2:
            raise ValueError("fit: need at least 2 training clips")
        self.classes = list(classes)
        n_classes = len(self.classes)
        desc, series, group, view = self._view_features(clips, train=True)
        tta = view < (2 if cfg.mirror else 1)
        y = labels[group]
        domain = np.array([clips[g].dataset for g in group]) if cfg.dataset_heads else None
        self.info = {"train_clips": len(clips), "train_rows": len(group)}
        self.heads: dict[str, LinearHead | DomainHead] = {}
        self.refs: dict[str, References] = {}
        if "descriptors" in cfg.branches:
            raw = self._relative("dataset_descriptors", clips, desc, group, tta, fit=True)
            head, info = fit_logreg(Rows(raw, y, group, tta, domain), n_classes,
                                    cfg.descriptor_C, cfg.inner_folds, cfg.seed)
            self.heads["descriptors_raw"], self.info["descriptors_raw"] = head, info
            if cfg.action_reference:
                self.refs["action"] = References.fit("action", clips, desc, group, tta,
                                                     cfg.min_reference_clips)
                ref = self.refs["action"].rows(clips, group, desc.shape[1])
                has = ~np.isnan(ref).all(axis=1)
                if has.any() and len(np.unique(y[has])) > 1:
                    rows = Rows(desc[has] - ref[has], y[has], group[has], tta[has],
                                None if domain is None else domain[has])
                    head, info = fit_logreg(rows, n_classes, cfg.descriptor_C, cfg.inner_folds,
                                            cfg.seed)
                    self.heads["descriptors_ref"], self.info["descriptors_ref"] = head, info
                    self.info["action_references"] = len(self.refs["action"].means)
        if "rocket" in cfg.branches:
            self.rocket = MiniRocket(cfg.rocket_features,
                                     max(9, round(cfg.rocket_window_s * cfg.fps)), cfg.seed)
            self.rocket.fit([series[i] for i in np.flatnonzero(view == 0)])
            feats = self._relative("dataset_rocket", clips, self.rocket.transform(series), group,
                                   tta, fit=True)
            head, info = fit_ridge(Rows(feats, y, group, tta, domain), n_classes,
                                   cfg.rocket_alphas, cfg.rocket_temperatures, cfg.inner_folds,
                                   cfg.seed)
            self.heads["rocket"], self.info["rocket"] = head, info
        self._fitted = True

    def _relative(self, name: str, clips: Sequence[Clip], x: np.ndarray, group: np.ndarray,
                  tta: np.ndarray | None = None, fit: bool = False) -> np.ndarray:
        """x relative to its clip's dataset reference (when dataset_reference is on); clips of
        a dataset unseen in training are relative to the mean over all training clips."""
        if not self.config.dataset_reference:
            return x
        if fit:
            self.refs[name] = References.fit("dataset", clips, x, group, tta, fallback=True)
        return x - self.refs[name].rows(clips, group, x.shape[1])

    # --- prediction ---------------------------------------------------------------------------
    def branch_scores(self, clips: Sequence[Clip]) -> dict[str, np.ndarray]:
        """Per branch, (n, C) class scores averaged over each clip's test-time views."""
        with _threads(self.config.threads):
            return self._branch_scores(clips)

    def _branch_scores(self, clips: Sequence[Clip]) -> dict[str, np.ndarray]:
        if not self._fitted:
            raise RuntimeError("MGSTClassifier: call fit() or load() before predicting")
        if not len(clips):
            return {b: np.zeros((0, len(self.classes))) for b in self.config.branches}
        desc, series, group, _ = self._view_features(clips, train=False)
        counts = np.bincount(group, minlength=len(clips))[:, None]
        domain = np.array([clips[g].dataset for g in group])

        def per_clip(s: np.ndarray) -> np.ndarray:
            out = np.zeros((len(clips), s.shape[1]))
            np.add.at(out, group, s)
            return out / counts

        out = {}
        if "descriptors" in self.config.branches:
            raw = self._relative("dataset_descriptors", clips, desc, group)
            s = self.heads["descriptors_raw"].scores(raw, domain)
            if "descriptors_ref" in self.heads:
                ref = self.refs["action"].rows(clips, group, desc.shape[1])
                has = ~np.isnan(ref).all(axis=1)
                if has.any():
                    s[has] = self.heads["descriptors_ref"].scores(desc[has] - ref[has],
                                                                  domain[has])
            out["descriptors"] = per_clip(s)
        if "rocket" in self.config.branches:
            feats = self._relative("dataset_rocket", clips, self.rocket.transform(series), group)
            out["rocket"] = per_clip(self.heads["rocket"].scores(feats, domain))
        return out

    def embed(self, clips: Sequence[Clip]) -> np.ndarray:
        """(n, C * branches) float32 embedding: each branch's class scores, centred per clip."""
        scores = self.branch_scores(clips)
        parts = [s - s.mean(axis=1, keepdims=True) for s in scores.values()]
        return np.concatenate(parts, axis=1).astype(np.float32)

    def predict_proba(self, clips: Sequence[Clip]) -> np.ndarray:
        """(n, C) emotion probabilities: the mean of the branches' softmaxes."""
        scores = self.branch_scores(clips)
        return np.mean([softmax(s) for s in scores.values()], axis=0)

    def predict(self, clips: Sequence[Clip]) -> list[str]:
        return [self.classes[i] for i in self.predict_proba(clips).argmax(axis=1)]

    @property
    def embedding_dim(self) -> int:
        return len(self.classes) * len(self.config.branches)

    # --- persistence --------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """classifier.safetensors (every fitted array) + classifier.json (config, classes,
        reference keys, chosen hyperparameters, eai version), written atomically."""
        import torch
        from safetensors.torch import save_file

        from eai import __version__
        from eai.toolkit.descriptors import DESCRIPTOR_NAMES

        if not self._fitted:
            raise RuntimeError("MGSTClassifier.save: nothing fitted yet")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, torch.Tensor] = {}
        domain_heads: dict[str, list[str]] = {}  # head -> datasets of its "~i" parts
        for name, head in self.heads.items():
            parts = {name: head}
            if isinstance(head, DomainHead):
                domain_heads[name] = list(head.by_domain)
                parts = {name: head.shared, **{f"{name}~{i}": h for i, h in
                                               enumerate(head.by_domain.values())}}
            for part, h in parts.items():
                for k, v in h.state(f"head.{part}").items():  # a copy: the parts share arrays
                    tensors[k] = torch.from_numpy(np.array(v, dtype=np.float64, copy=True))
        ref_meta = {}
        for name, ref in self.refs.items():
            arrays, ref_meta[name] = ref.state(f"ref.{name}")
            for k, v in arrays.items():
                tensors[k] = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64))
        if "rocket" in self.heads:
            for k, v in self.rocket.state().items():
                tensors[f"rocket.{k}"] = v.contiguous()
        meta = {"eai_version": __version__, "kind": "mgst-classifier", "format": 1,
                "config": self.config.to_dict(), "classes": self.classes,
                "references": ref_meta, "domain_heads": domain_heads, "info": self.info,
                "descriptor_names": list(DESCRIPTOR_NAMES), "channel_names": list(CHANNEL_NAMES)}
        tmp_w, tmp_c = d / (WEIGHTS_FILE + ".tmp"), d / (CONFIG_FILE + ".tmp")
        save_file(tensors, str(tmp_w))
        tmp_c.write_text(json.dumps(meta, indent=2, default=float))
        tmp_w.replace(d / WEIGHTS_FILE)
        tmp_c.replace(d / CONFIG_FILE)

    @classmethod
    def load(cls, directory: str | Path) -> MGSTClassifier:
        from safetensors.torch import load_file

        from eai.toolkit.descriptors import DESCRIPTOR_NAMES

        d = Path(directory)
        if not (d / CONFIG_FILE).is_file() or not (d / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(f"{d}: not a classifier directory (needs {CONFIG_FILE} and "
                                    f"{WEIGHTS_FILE}; write one with MGSTClassifier.save)")
        meta = json.loads((d / CONFIG_FILE).read_text())
        if meta.get("kind") != "mgst-classifier":
            raise ValueError(f"{d / CONFIG_FILE}: kind is {meta.get('kind')!r}, expected "
                             f"'mgst-classifier'")
        if meta["descriptor_names"] != list(DESCRIPTOR_NAMES):
            raise ValueError(f"{d}: the classifier was trained on other kinematic descriptors "
                             f"than this eai computes; retrain it")
        if meta["channel_names"] != list(CHANNEL_NAMES):
            raise ValueError(f"{d}: the classifier was trained on other per-frame channels than "
                             f"this eai computes; retrain it")
        self = cls(ClassifierConfig.from_dict(meta["config"]))
        self.classes, self.info = list(meta["classes"]), meta.get("info", {})
        t = load_file(str(d / WEIGHTS_FILE))
        arrays = {k: v.numpy().astype(np.float64) for k, v in t.items()
                  if k.startswith(("head.", "ref."))}
        names = {k.split(".")[1] for k in arrays if k.startswith("head.")}
        parts = {n: LinearHead.from_state(arrays, f"head.{n}") for n in names}
        self.heads = {n: h for n, h in parts.items() if "~" not in n}
        for n, datasets in meta.get("domain_heads", {}).items():
            self.heads[n] = DomainHead(parts[n], {d: parts[f"{n}~{i}"]
                                                  for i, d in enumerate(datasets)})
        self.refs = {n: References.from_state(arrays, f"ref.{n}", m)
                     for n, m in meta["references"].items()}
        if "rocket" in self.heads:
            self.rocket = MiniRocket.from_state(
                {k[len("rocket."):]: v for k, v in t.items() if k.startswith("rocket.")},
                self.config.seed)
        self._fitted = True
        return self


def load_classifier(directory: str | Path) -> MGSTClassifier:
    return MGSTClassifier.load(directory)


__all__ = ["MGSTClassifier", "load_classifier"]
