"""Evaluation protocols: splits are disjoint and stratified, no test label leaks, metrics right."""

from __future__ import annotations

import numpy as np
import pytest

from eai.toolkit.baselines import MajorityClass
from eai.toolkit.clip import Clip, SourceInfo
from eai.toolkit.evaluation import (
    cross_dataset_splits,
    group_splits,
    kfold_splits,
    macro_f1,
    run_protocol,
)


def _clip(i: int, emotion: str, action: str, dataset: str = "d") -> Clip:
    src = SourceInfo(path=f"{i}.bvh", format="bvh", sha256="0", fps=30.0, joint_names=[],
                     units="m", profile="canonical-19")
    return Clip(clip_id=f"{dataset}/{i}", positions=np.zeros((4, 19, 3)),
                joint_mask=np.ones(19, bool), fps=30.0, source=src, dataset=dataset,
                emotion=emotion, action=action)


def _data(n_per_class=6, classes=("angry", "happy", "sad"), actions=("walk", "run", "bow")):
    clips = [_clip(i * 10 + k, c, actions[k % len(actions)], "a" if k % 2 else "b")
             for i, c in enumerate(classes) for k in range(n_per_class)]
    labels = np.array([list(classes).index(c.emotion) for c in clips])
    return clips, labels, list(classes)


class SpyMethod:
    """Remembers what it was trained on, and predicts the majority."""

    name = "spy"

    def __init__(self):
        self.seen: list[set[str]] = []
        self.inner = MajorityClass()

    def fit(self, clips, labels, classes):
        self.seen.append({c.clip_id for c in clips})
        self.inner.fit(clips, labels, classes)

    def predict_proba(self, clips):
        assert not ({c.clip_id for c in clips} & self.seen[-1]), "a test clip was trained on"
        return self.inner.predict_proba(clips)


def test_kfold_is_stratified_disjoint_and_covers_every_clip_once_per_repeat():
    clips, labels, classes = _data()
    splits = list(kfold_splits(labels, folds=3, repeats=2))
    assert len(splits) == 6
    for unit in ("seed 0", "seed 1"):
        tested = np.concatenate([s.test for s in splits if s.unit == unit])
        assert sorted(tested) == list(range(len(clips)))
    for s in splits:
        assert not set(s.train) & set(s.test)
        assert np.bincount(labels[s.test], minlength=3).tolist() == [2, 2, 2]


def test_kfold_refuses_too_few_clips_per_class():
    with pytest.raises(ValueError, match="rarest emotion has only 2"):
        list(kfold_splits(np.array([0, 0, 1, 1, 1]), folds=3))


def test_group_and_cross_dataset_splits_hold_out_whole_groups():
    clips, labels, classes = _data()
    for s in group_splits([c.action for c in clips]):
        held_out = {clips[i].action for i in s.test}
        assert held_out == {s.unit} and s.unit not in {clips[i].action for i in s.train}
    units = [s.unit for s in cross_dataset_splits([c.dataset for c in clips])]
    assert units == ["a -> b", "b -> a"]


def test_no_test_clip_is_ever_trained_on_and_majority_scores_right():
    clips, labels, classes = _data(n_per_class=5)
    labels[:1] = 1  # make "happy" the majority: 6 of 15
    spy = SpyMethod()
    splits = list(kfold_splits(labels, folds=2, repeats=3))
    (result,) = run_protocol(clips, labels, classes, splits, [spy])
    assert len(spy.seen) == 6 and len(result.accuracy) == 3
    # The majority of each training fold is "happy" or a tie; accuracy is at most 6/15.
    assert all(a <= 6 / 15 + 1e-9 for a in result.accuracy)
    assert result.confusion.sum() == 3 * 15


def test_macro_f1_matches_scikit_learn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    assert macro_f1(t, p, 4) == pytest.approx(f1_score(t, p, average="macro"))
