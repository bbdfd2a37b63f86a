"""Emotion recognition evaluation: protocols, methods and metrics.

Protocols (all over clips that carry an emotion):
- `kfold`: stratified k-fold, repeated over seeds (default 5 x 5); one score per repeat.
- `group`: leave-one-group-out by action/content; one score per held-out group (and seed).
- `cross-dataset`: train on dataset A, test on dataset B, for each ordered pair sharing labels.

A method is anything with `fit(train clips, labels)` and `predict_proba(test clips)`; it is
fitted anew inside every fold, so no test label ever influences training. Per-clip features that
need no labels (the kinematic descriptors) are computed once and shared between folds, which is
leak-free by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol, Sequence

import numpy as np

from eai.toolkit.clip import Clip


class Method(Protocol):
    name: str

    def fit(self, clips: Sequence[Clip], labels: np.ndarray, classes: list[str]) -> None: ...

    def predict_proba(self, clips: Sequence[Clip]) -> np.ndarray: ...


@dataclass
class Split:
    train: np.ndarray  # indices into the evaluated clips
    test: np.ndarray
    unit: str  # the score unit this split belongs to: "seed 0", "walk", "A -> B"


@dataclass
class MethodResult:
    name: str
    classes: list[str]
    accuracy: list[float] = field(default_factory=list)  # one per score unit
    macro_f1: list[float] = field(default_factory=list)
    units: list[str] = field(default_factory=list)
    confusion: np.ndarray | None = None  # (C, C) summed over all test predictions, rows = truth

    @property
    def per_class_recall(self) -> dict[str, float]:
        cm = self.confusion
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.diag(cm) / cm.sum(axis=1)
        return {c: float(r) for c, r in zip(self.classes, recall)}

    def summary_line(self) -> str:
        acc, f1 = np.array(self.accuracy), np.array(self.macro_f1)
        return (f"{self.name:<24} accuracy {acc.mean():.3f} ± {acc.std():.3f}  "
                f"macro-F1 {f1.mean():.3f} ± {f1.std():.3f}")

    def to_dict(self) -> dict:
        return {"name": self.name, "classes": self.classes, "accuracy": self.accuracy,
                "macro_f1": self.macro_f1, "units": self.units,
                "accuracy_mean": float(np.mean(self.accuracy)),
                "accuracy_std": float(np.std(self.accuracy)),
                "macro_f1_mean": float(np.mean(self.macro_f1)),
                "macro_f1_std": float(np.std(self.macro_f1)),
                "per_class_recall": self.per_class_recall,
                "confusion": self.confusion.tolist() if self.confusion is not None else None}


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Macro-averaged F1 over the classes present in y_true (absent classes would be 0/0)."""
    scores = []
    for c in np.unique(y_true):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def kfold_splits(y: np.ndarray, folds: int = 5, repeats: int = 5,
                 seed: int = 0) -> Iterator[Split]:
    from sklearn.model_selection import StratifiedKFold

    min_count = np.bincount(y).min()
    if min_count < folds:
        raise ValueError(f"the rarest emotion has only {min_count} clips, fewer than --folds "
                         f"{folds}; use fewer folds or drop that emotion (--emotions)")
    for r in range(repeats):
        skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed + r)
        for train, test in skf.split(np.zeros(len(y)), y):
            yield Split(train, test, f"seed {seed + r}")


def group_splits(groups: Sequence[str | None], repeats: int = 1,
                 seed: int = 0) -> Iterator[Split]:
    names = sorted({g for g in groups if g is not None})
    if len(names) < 2:
        raise ValueError("leave-one-group-out needs at least 2 groups (actions); the clips have "
                         f"{len(names)}")
    g = np.array([x if x is not None else "" for x in groups])
    for r in range(repeats):
        for name in names:
            test = np.flatnonzero(g == name)
            train = np.flatnonzero((g != name) & (g != ""))
            yield Split(train, test, f"{name}" + (f" seed {seed + r}" if repeats > 1 else ""))


def cross_dataset_splits(datasets: Sequence[str]) -> Iterator[Split]:
    d = np.asarray(datasets)
    names = sorted(set(datasets))
    if len(names) < 2:
        raise ValueError("cross-dataset evaluation needs clips from at least 2 datasets")
    for a in names:
        for b in names:
            if a != b:
                yield Split(np.flatnonzero(d == a), np.flatnonzero(d == b), f"{a} -> {b}")


def run_protocol(clips: Sequence[Clip], labels: np.ndarray, classes: list[str],
                 splits: list[Split], methods: list[Method],
                 on_step: Callable[[str, Split], None] | None = None) -> list[MethodResult]:
    """Fit every method inside every split; score per split unit (e.g. per seed)."""
    c = len(classes)
    results = []
    for method in methods:
        res = MethodResult(name=method.name, classes=classes, confusion=np.zeros((c, c), int))
        preds_by_unit: dict[str, tuple[list, list]] = {}
        for split in splits:
            if on_step:
                on_step(method.name, split)
            train_clips = [clips[i] for i in split.train]
            method.fit(train_clips, labels[split.train], classes)
            proba = method.predict_proba([clips[i] for i in split.test])
            pred = np.argmax(proba, axis=1)
            truth, predicted = preds_by_unit.setdefault(split.unit, ([], []))
            truth.extend(labels[split.test])
            predicted.extend(pred)
            np.add.at(res.confusion, (labels[split.test], pred), 1)
        for unit, (truth, predicted) in preds_by_unit.items():
            t, p = np.array(truth), np.array(predicted)
            res.units.append(unit)
            res.accuracy.append(float(np.mean(t == p)))
            res.macro_f1.append(macro_f1(t, p, c))
        results.append(res)
    return results


@dataclass
class LabelledClips:
    clips: list[Clip]
    labels: np.ndarray  # index into classes
    classes: list[str]

    @property
    def actions(self) -> list[str | None]:
        return [c.action for c in self.clips]

    @property
    def datasets(self) -> list[str]:
        return [c.dataset for c in self.clips]


LABEL_FIELDS = ("emotion", "raw")


def load_labelled_clips(dataset_dirs: Sequence[str], actions: Sequence[str] | None = None,
                        emotions: Sequence[str] | None = None,
                        datasets: Sequence[str] | None = None,
                        label: str = "emotion") -> LabelledClips:
    """Clips that carry a label, optionally restricted to some actions/labels/datasets.

    label: "emotion" (the mapped emotion; clips without one are skipped) or "raw" (the
    dataset's own label, `label_raw`, e.g. every Bandai-Namco style including the character
    styles that map to no emotion). `emotions` restricts the chosen label's values.
    """
    from eai.toolkit.dataset import iter_clips

    if label not in LABEL_FIELDS:
        raise ValueError(f"unknown label {label!r}; use emotion or raw")
    field_name = "emotion" if label == "emotion" else "label_raw"
    clips = [c for d in dataset_dirs for c in iter_clips(d, emotion_only=label == "emotion")
             if getattr(c, field_name)
             and (actions is None or c.action in actions)
             and (emotions is None or getattr(c, field_name) in emotions)
             and (datasets is None or c.dataset in datasets)]
    if not clips:
        raise ValueError(f"no clip with {'an emotion' if label == 'emotion' else 'a raw label'} "
                         "matches the selection (check --actions, --emotions, --datasets "
                         "against `eai dataset info`)")
    classes = list(emotions) if emotions else sorted({getattr(c, field_name) for c in clips})
    labels = np.array([classes.index(getattr(c, field_name)) for c in clips])
    return LabelledClips(clips, labels, classes)


def make_splits(protocol: str, data: LabelledClips, folds: int = 5, repeats: int = 5,
                seed: int = 0) -> list[Split]:
    if protocol == "kfold":
        return list(kfold_splits(data.labels, folds, repeats, seed))
    if protocol == "group":
        return list(group_splits(data.actions, 1, seed))
    if protocol == "cross-dataset":
        return list(cross_dataset_splits(data.datasets))
    raise ValueError(f"unknown protocol {protocol!r}; use kfold, group or cross-dataset")
