"""The baselines a researcher reaches for, trained and scored in the same run as eai's model."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from eai.toolkit.clip import Clip


class MajorityClass:
    """Always the most frequent training emotion: the floor every method must clear."""

    name = "majority"

    def fit(self, clips: Sequence[Clip], labels: np.ndarray, classes: list[str]) -> None:
        self._n = len(classes)
        self._label = int(np.bincount(labels, minlength=self._n).argmax())

    def predict_proba(self, clips: Sequence[Clip]) -> np.ndarray:
        proba = np.zeros((len(clips), self._n))
        proba[:, self._label] = 1.0
        return proba


class DescriptorFeatures:
    """Kinematic descriptors per clip, computed once and looked up by clip id.

    Descriptors use no labels, so sharing them between folds cannot leak test labels.
    """

    def __init__(self) -> None:
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, clips: Sequence[Clip]) -> np.ndarray:
        from eai.toolkit.descriptors import descriptor_matrix

        todo = [c for c in clips if c.clip_id not in self._cache]
        if todo:
            for clip, row in zip(todo, descriptor_matrix(todo)):
                self._cache[clip.clip_id] = row
        return np.stack([self._cache[c.clip_id] for c in clips])


class DescriptorLogReg:
    """Descriptors -> mean imputation -> standardisation -> logistic regression (scikit-learn).

    Imputation and scaling are fitted on the training fold only (one sklearn Pipeline).
    """

    name = "descriptors+logreg"

    def __init__(self, features: DescriptorFeatures | None = None, C: float = 1.0):
        self.features = features or DescriptorFeatures()
        self.C = C

    def fit(self, clips: Sequence[Clip], labels: np.ndarray, classes: list[str]) -> None:
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self._n = len(classes)
        x = self.features(clips)
        x = np.where(np.isfinite(x), x, np.nan)
        self._model = make_pipeline(SimpleImputer(strategy="mean", keep_empty_features=True),
                                    StandardScaler(),
                                    LogisticRegression(C=self.C, max_iter=2000))
        self._model.fit(x, labels)

    def predict_proba(self, clips: Sequence[Clip]) -> np.ndarray:
        x = self.features(clips)
        x = np.where(np.isfinite(x), x, np.nan)
        proba = np.zeros((len(clips), self._n))
        proba[:, self._model.classes_] = self._model.predict_proba(x)
        return proba
