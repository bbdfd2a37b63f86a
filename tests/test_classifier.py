"""The MGST semantic classifier on converted sample data: learns, is deterministic, round-trips
through save/load, survives masked joints and treats a mirrored clip like the original."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from eai.toolkit.augment import mirror_clip, rotate_y
from eai.toolkit.classifier import ClassifierConfig, MGSTClassifier
from eai.toolkit.evaluation import kfold_splits, load_labelled_clips, run_protocol
from eai.toolkit.skeleton import JOINT_INDEX

# Small and fast: fewer random features and one inner split size; same code paths.
FAST = {"rocket_features": 840, "inner_folds": 2, "time_warps": (0.8,)}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from eai.converters.pipeline import ConvertConfig, run_convert
    from eai.toolkit.sample_data import write_sample_data

    root = tmp_path_factory.mktemp("clf")
    # one format: the same motion in two formats would sit on both sides of a split
    write_sample_data(root / "src", clips_per_emotion=4, formats=("bvh",))
    run_convert(ConvertConfig(inputs=[str(root / "src")], out_dir=root / "ds", workers=1))
    return load_labelled_clips([str(root / "ds")])


@pytest.fixture(scope="module")
def fitted(sample):
    model = MGSTClassifier(ClassifierConfig(seed=3, **FAST))
    model.fit(sample.clips, sample.labels, sample.classes)
    return model


def test_learns_the_synthetic_emotions_well_above_chance(sample):
    splits = list(kfold_splits(sample.labels, folds=2, repeats=1, seed=0))
    res = run_protocol(sample.clips, sample.labels, sample.classes, splits,
                       [MGSTClassifier(ClassifierConfig(**FAST))])[0]
    chance = 1 / len(sample.classes)
    assert np.mean(res.accuracy) >= 3 * chance, res.accuracy


def test_probabilities_and_embedding_shapes(fitted, sample):
    p = fitted.predict_proba(sample.clips[:4])
    assert p.shape == (4, len(sample.classes))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    emb = fitted.embed(sample.clips[:4])
    assert emb.shape == (4, fitted.embedding_dim) == (4, 2 * len(sample.classes))
    assert emb.dtype == np.float32 and np.isfinite(emb).all()
    assert fitted.predict_proba([]).shape == (0, len(sample.classes))


def test_same_seed_same_model(fitted, sample):
    again = MGSTClassifier(ClassifierConfig(seed=3, **FAST), cache=False)
    again.fit(sample.clips, sample.labels, sample.classes)
    np.testing.assert_array_equal(again.predict_proba(sample.clips),
                                  fitted.predict_proba(sample.clips))
    other = MGSTClassifier(ClassifierConfig(seed=4, **FAST))
    other.fit(sample.clips, sample.labels, sample.classes)
    assert not np.array_equal(other.rocket.biases[0].numpy(), fitted.rocket.biases[0].numpy())


def test_save_load_gives_identical_probabilities(fitted, sample, tmp_path):
    fitted.save(tmp_path / "clf")
    assert sorted(p.name for p in (tmp_path / "clf").iterdir()) == ["classifier.json",
                                                                    "classifier.safetensors"]
    loaded = MGSTClassifier.load(tmp_path / "clf")
    assert loaded.classes == fitted.classes and loaded.config == fitted.config
    np.testing.assert_array_equal(loaded.predict_proba(sample.clips),
                                  fitted.predict_proba(sample.clips))
    np.testing.assert_array_equal(loaded.embed(sample.clips), fitted.embed(sample.clips))


def test_load_refuses_a_folder_without_a_classifier(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a classifier directory"):
        MGSTClassifier.load(tmp_path)


def _masked(clip, joints=("l_wrist", "l_elbow", "head", "r_foot")):
    pos, mask = clip.positions.copy(), clip.joint_mask.copy()
    for j in joints:
        pos[:, JOINT_INDEX[j]] = np.nan
        mask[JOINT_INDEX[j]] = False
    pos[5:9, JOINT_INDEX["r_knee"]] = np.nan  # a short gap in a present joint
    return dataclasses.replace(clip, clip_id=clip.clip_id + "-masked", positions=pos,
                               joint_mask=mask)


def test_masked_joints_give_finite_probabilities(fitted, sample):
    masked = [_masked(c) for c in sample.clips[:3]]
    p = fitted.predict_proba(masked)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    # and training with masked clips among the others works too
    model = MGSTClassifier(ClassifierConfig(**FAST))
    model.fit(sample.clips + masked, np.concatenate([sample.labels, sample.labels[:3]]),
              sample.classes)
    assert np.isfinite(model.predict_proba(masked + sample.clips[:2])).all()


def test_a_mirrored_clip_gets_the_same_label(fitted, sample):
    mirrored = [dataclasses.replace(mirror_clip(c), clip_id=c.clip_id + "-mirror")
                for c in sample.clips]
    p, pm = fitted.predict_proba(sample.clips), fitted.predict_proba(mirrored)
    np.testing.assert_allclose(pm, p, atol=1e-6)
    assert (pm.argmax(1) == p.argmax(1)).all()


def test_turning_the_clip_about_y_hardly_changes_it(fitted, sample):
    turned = [dataclasses.replace(rotate_y(c, 40.0), clip_id=c.clip_id + "-turned")
              for c in sample.clips[:6]]
    p, pt = fitted.predict_proba(sample.clips[:6]), fitted.predict_proba(turned)
    np.testing.assert_allclose(pt, p, atol=0.02)


@pytest.mark.parametrize("field,value", [
    ("branches", ("descriptors", "cnn")), ("time_warps", (1.0,)), ("rocket_alphas", (0.0,)),
    ("inner_folds", 1), ("rotate_deg", 400.0), ("seed", -1),
])
def test_config_validation_names_the_field_and_value(field, value):
    with pytest.raises(ValueError) as e:
        ClassifierConfig(**{field: value})
    assert str(e.value).startswith(f"ClassifierConfig.{field}={value!r}:"), str(e.value)


def test_config_round_trips_through_a_dict():
    cfg = ClassifierConfig(seed=7, branches=("rocket",), time_warps=(0.9, 1.1))
    assert ClassifierConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown field"):
        ClassifierConfig.from_dict({"sead": 1})


def test_unseen_action_and_dataset_use_the_reference_free_heads(sample, tmp_path):
    model = MGSTClassifier(ClassifierConfig(dataset_reference=True, **FAST))
    model.fit(sample.clips, sample.labels, sample.classes)
    assert {"descriptors_raw", "descriptors_ref", "rocket"} <= set(model.heads)
    assert set(model.refs) == {"action", "dataset_descriptors", "dataset_rocket"}
    new = [dataclasses.replace(c, clip_id=c.clip_id + "-new", action="dance", dataset="other")
           for c in sample.clips[:3]]
    p = model.predict_proba(new)
    assert np.isfinite(p).all()
    model.save(tmp_path / "clf")
    np.testing.assert_array_equal(MGSTClassifier.load(tmp_path / "clf").predict_proba(new), p)


# -- several datasets: shared weights plus a deviation per dataset ---------------------------
def _two_domain_rows(seed=0, n=80, f=6):
    """Feature 0 gives the label in both datasets, feature 1 in opposite directions."""
    from eai.toolkit.classifier.heads import Rows

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    domain = np.where(np.arange(n) < n // 2, "a", "b")
    x = rng.normal(size=(n, f))
    x[:, 0] += 0.5 * (2 * y - 1)
    x[:, 1] += 3.0 * (2 * y - 1) * np.where(domain == "a", 1, -1)
    return Rows(x, y, np.arange(n), np.ones(n, bool), domain)


def test_ridge_domain_heads_equal_the_explicit_augmented_features():
    from eai.toolkit.classifier.heads import DomainHead, fit_ridge, standardise

    rows = _two_domain_rows()
    head, _ = fit_ridge(rows, 2, (0.5,), (1.0,), folds=0, seed=0)
    assert isinstance(head, DomainHead) and sorted(head.by_domain) == ["a", "b"]
    # the same ridge on [z, z*[a], z*[b], [a], [b]] written out (z standardised with each
    # dataset's own statistics, / sqrt(F))
    root = np.sqrt(rows.x.shape[1])
    z = np.zeros_like(rows.x)
    for name, h in head.by_domain.items():
        r = rows.domain == name
        np.testing.assert_allclose(h.mean, rows.x[r].mean(0))
        z[r] = standardise(rows.x[r], h.mean, h.std) / root
    oh = np.stack([rows.domain == "a", rows.domain == "b"], 1).astype(float)
    phi = np.hstack([z, z * oh[:, [0]], z * oh[:, [1]], oh])
    Y = np.eye(2)[rows.y]
    A = np.linalg.solve(phi @ phi.T + 0.5 * np.eye(len(Y)), Y - Y.mean(0))
    expected = phi @ (phi.T @ A) + Y.mean(0)
    np.testing.assert_allclose(head.scores(rows.x, rows.domain), expected, atol=1e-8)
    # a dataset the head has not seen: the shared weights on the statistics of all rows
    np.testing.assert_allclose(head.shared.mean, rows.x.mean(0))
    pooled_z = standardise(rows.x, head.shared.mean, head.shared.std) / root
    np.testing.assert_allclose(head.scores(rows.x, np.full(len(Y), "c")),
                               pooled_z @ (z.T @ A) + Y.mean(0), atol=1e-8)


@pytest.mark.parametrize("fit", ["logreg", "ridge"])
def test_a_dataset_recorded_on_another_scale_changes_no_scores(fit):
    """Each dataset is standardised with its own statistics: measuring one of them in other
    units (x -> 7 x - 20) leaves every dataset's scores as they were."""
    from eai.toolkit.classifier.heads import fit_logreg, fit_ridge

    def train(rows):
        if fit == "logreg":
            return fit_logreg(rows, 2, (1.0,), folds=0, seed=0)[0]
        return fit_ridge(rows, 2, (0.1,), (1.0,), folds=0, seed=0)[0]

    rows = _two_domain_rows()
    b = rows.domain == "b"
    moved = dataclasses.replace(rows, x=np.where(b[:, None], 7 * rows.x - 20, rows.x))
    np.testing.assert_allclose(train(moved).scores(moved.x, moved.domain),
                               train(rows).scores(rows.x, rows.domain), atol=1e-6)
    # a dataset with too few clips for statistics of its own uses those of all rows
    few = dataclasses.replace(moved, domain=np.where(np.arange(len(b)) < 75, "a", "b"))
    head = train(few)
    np.testing.assert_array_equal(head.by_domain["b"].mean, head.shared.mean)


@pytest.mark.parametrize("fit", ["logreg", "ridge"])
def test_domain_heads_fit_datasets_that_disagree(fit):
    from eai.toolkit.classifier.heads import LinearHead, fit_logreg, fit_ridge

    def train(rows):
        if fit == "logreg":
            return fit_logreg(rows, 2, (1.0,), folds=0, seed=0)[0]
        return fit_ridge(rows, 2, (0.1,), (1.0,), folds=0, seed=0)[0]

    rows, test = _two_domain_rows(0), _two_domain_rows(1)
    accuracy = lambda h: np.mean(h.scores(test.x, test.domain).argmax(1) == test.y)
    pooled = train(dataclasses.replace(rows, domain=None))
    assert isinstance(pooled, LinearHead)
    assert accuracy(train(rows)) >= accuracy(pooled) + 0.1, (accuracy(train(rows)),
                                                            accuracy(pooled))
    # one dataset: exactly the plain head (no deviation to learn)
    one = dataclasses.replace(rows, domain=np.full(len(rows.y), "a"))
    single = train(one)
    assert isinstance(single, LinearHead)
    np.testing.assert_array_equal(single.coef, pooled.coef)


def test_two_datasets_save_and_load_their_heads(sample, tmp_path):
    from eai.toolkit.classifier.heads import DomainHead

    clips = [dataclasses.replace(c, dataset="other") if i % 2 else c
             for i, c in enumerate(sample.clips)]
    model = MGSTClassifier(ClassifierConfig(**FAST))
    model.fit(clips, sample.labels, sample.classes)
    assert all(isinstance(h, DomainHead) for h in model.heads.values())
    model.save(tmp_path / "clf")
    loaded = MGSTClassifier.load(tmp_path / "clf")
    unseen = [dataclasses.replace(c, dataset="third") for c in clips[:4]]
    for some in (clips, unseen):
        np.testing.assert_array_equal(loaded.predict_proba(some), model.predict_proba(some))
    plain = MGSTClassifier(ClassifierConfig(dataset_heads=False, **FAST))
    plain.fit(clips, sample.labels, sample.classes)
    assert not any(isinstance(h, DomainHead) for h in plain.heads.values())


def test_each_dataset_gets_the_hyperparameters_its_own_clips_choose():
    from eai.toolkit.classifier.heads import MIN_DOMAIN_CLIPS, _choose

    n = MIN_DOMAIN_CLIPS
    y = np.zeros(2 * n + 3, int)
    dom = np.array(["a"] * n + ["b"] * n + ["tiny"] * 3)
    right, wrong = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    # candidate 0.1 is right on a and tiny, 1.0 on b; pooled: b + tiny outnumber a
    s01 = np.vstack([right] * n + [wrong] * n + [right] * 3)
    s10 = np.vstack([wrong] * (n - 5) + [right] * 5 + [right] * n + [wrong] * 3)
    pooled, per, results = _choose([0.1, 1.0], [s01, s10], y, dom, ["a", "b", "tiny"])
    assert pooled == 1.0 and len(results) == 2
    assert per == {"a": 0.1, "b": 1.0, "tiny": 1.0}  # too few clips of its own: pooled
