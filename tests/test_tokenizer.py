"""The spatio-temporal MGST tokenizer on tiny synthetic data: round trip, determinism, masks."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from eai.converters.pipeline import ConvertConfig, run_convert
from eai.toolkit.dataset import iter_clips, load_clips
from eai.toolkit.skeleton import JOINT_INDEX
from eai.toolkit.tokenizer import TokenizerConfig, load_tokenizer, train_tokenizer
from eai.toolkit.tokenizer.features import (
    clip_features,
    compose_positions,
    mirror_positions,
    root_motion,
)

TINY = {"hidden": 16, "depth": 1, "batch_size": 16, "crop_frames": 32, "lr": 3e-3, "threads": 1}


@pytest.fixture(scope="module")
def trained(sample_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("tokdir")
    cfg = TokenizerConfig(steps=300, held_out_fraction=0.0, seed=1, **TINY)
    report = train_tokenizer([sample_dataset], out, cfg, progress=False)
    return out, report


def _masked_chest(clip):
    """An Emotion-Gait-like clip: no chest (NaN, joint_mask false)."""
    c = dataclasses.replace(clip, positions=clip.positions.copy(),
                            joint_mask=clip.joint_mask.copy(),
                            clip_id=clip.clip_id + "-nochest", dataset="emotion-gait")
    c.positions[:, JOINT_INDEX["chest"]] = np.nan
    c.joint_mask[JOINT_INDEX["chest"]] = False
    return c


def test_features_round_trip_exactly(sample_dataset):
    clip = load_clips(sample_dataset)[0]
    values, valid = clip_features(clip.positions, clip.joint_mask, clip.fps)
    assert valid.all() and np.isfinite(values).all()
    back = compose_positions(values, root_motion(clip.positions, clip.joint_mask), clip.fps)
    np.testing.assert_allclose(back, clip.positions, atol=1e-5)
    # with no root given, integrating the root motion features lands on the same path
    integrated = compose_positions(values, None, clip.fps)
    np.testing.assert_allclose(integrated[:, :, [0, 2]] - integrated[:1, :1, [0, 2]],
                               clip.positions[:, :, [0, 2]] - clip.positions[:1, :1, [0, 2]],
                               atol=1e-3)


def test_mirroring_swaps_sides_and_negates_x(sample_dataset):
    clip = load_clips(sample_dataset)[0]
    pos, _ = mirror_positions(clip.positions, clip.joint_mask)
    lw, rw = JOINT_INDEX["l_wrist"], JOINT_INDEX["r_wrist"]
    np.testing.assert_allclose(pos[:, lw, 0], -clip.positions[:, rw, 0])
    np.testing.assert_allclose(pos[:, lw, 1:], clip.positions[:, rw, 1:])


def test_round_trip_beats_mean_pose(trained, sample_dataset):
    out, report = trained
    assert report.mpjpe_on == "train" and report.held_out_clips == 0
    assert report.mpjpe_mm < 0.5 * report.mean_pose_baseline_mm, report
    assert 0 < report.used_codes <= report.num_codes == 512
    assert report.dead_codes == 512 - report.used_codes and report.perplexity > 1
    tok = load_tokenizer(out)
    clip = load_clips(sample_dataset)[0]
    codes = tok.encode(clip)
    assert codes.shape == (-(-clip.num_frames // 4), 5) and codes.dtype == np.int64
    pos = tok.decode(codes, tok.root_motion(clip))
    assert pos.shape == clip.positions.shape and np.isfinite(pos).all()
    assert tok.decode(codes).shape == (len(codes) * 4, 19, 3)  # root integrated
    meta = json.loads((out / "tokenizer.json").read_text())
    assert meta["eai_version"] and meta["config"]["levels"] == [8, 8, 8]
    assert meta["datasets"][0]["clips"] == 15 and meta["datasets"][0]["command"] is not None


def test_save_load_gives_identical_tokens(trained, sample_dataset):
    out, _ = trained
    clips = load_clips(sample_dataset)
    a, b = load_tokenizer(out), load_tokenizer(out)
    for x, y in zip(a.encode_many(clips), b.encode_many(clips)):
        np.testing.assert_array_equal(x, y)


def test_batched_encoding_matches_one_by_one(trained, sample_dataset):
    tok = load_tokenizer(trained[0])
    clips = load_clips(sample_dataset)[:4]
    clips[1] = dataclasses.replace(clips[1], positions=clips[1].positions[:37])  # ragged
    clips[2] = dataclasses.replace(clips[2], positions=clips[2].positions[:9])
    for clip, codes in zip(clips, tok.encode_many(clips)):
        np.testing.assert_array_equal(codes, tok.encode(clip))


def test_same_seed_same_tokens(sample_dataset, tmp_path):
    cfg = TokenizerConfig(steps=20, held_out_fraction=0.2, seed=3, **TINY)
    r1 = train_tokenizer([sample_dataset], tmp_path / "a", cfg, progress=False)
    r2 = train_tokenizer([sample_dataset], tmp_path / "b", cfg, progress=False)
    assert r1.held_out_ids == r2.held_out_ids and len(r1.held_out_ids) == 3
    clips = load_clips(sample_dataset)
    ta, tb = load_tokenizer(tmp_path / "a"), load_tokenizer(tmp_path / "b")
    for x, y in zip(ta.encode_many(clips), tb.encode_many(clips)):
        np.testing.assert_array_equal(x, y)
    assert r1.mpjpe_mm == r2.mpjpe_mm


def test_masked_joints_encode_without_nan(trained, sample_dataset):
    tok = load_tokenizer(trained[0])
    clip = _masked_chest(load_clips(sample_dataset)[0])
    values, valid = clip_features(clip.positions, clip.joint_mask, clip.fps)
    assert np.isfinite(values).all() and not valid[:, 3:6].any()  # chest columns
    codes = tok.encode(clip)
    assert codes.min() >= 0 and codes.max() < 512
    rec = tok.reconstruct(clip)
    assert np.isnan(rec[:, JOINT_INDEX["chest"]]).all()
    others = np.delete(rec, JOINT_INDEX["chest"], axis=1)
    assert np.isfinite(others).all()


def test_vocabulary_covers_token_text(trained, sample_dataset):
    tok = load_tokenizer(trained[0])
    vocab = tok.vocabulary()
    assert len(vocab) == len(set(vocab)) and "<st_0>" in vocab and "<st_511>" in vocab
    clip = load_clips(sample_dataset)[0]
    for c in (clip, _masked_chest(clip)):  # a known and an unknown dataset
        text = tok.tokens_text(c)
        tokens = text.split(" ")
        assert tokens[0] == "<motion>" and tokens[-1] == "</motion>"
        assert set(tokens) <= set(vocab), set(tokens) - set(vocab)
        assert tokens.count("<t>") == len(tok.encode(c))
    assert tok.tokens_text(clip).split(" ")[1] == "<ds_sd>"
    assert tok.tokens_text(_masked_chest(clip)).split(" ")[1] == "<ds_other>"
    assert "<ds_" not in tok.tokens_text(clip, dataset_tag=False)


@pytest.mark.parametrize("field,value", [("hidden", 0), ("levels", (1, 8)), ("crop_frames", 30),
                                         ("lr", -1.0), ("held_out_fraction", 1.0),
                                         ("steps", "many")])
def test_config_validation_names_field_and_value(field, value):
    with pytest.raises(ValueError) as e:
        TokenizerConfig(**{field: value})
    assert field in str(e.value) and str(value)[:4] in str(e.value)


def test_cli_encode_and_report(trained, sample_dataset, tmp_path):
    from typer.testing import CliRunner

    from eai.cli import app

    runner = CliRunner()
    out, _ = trained
    r = runner.invoke(app, ["tokenizer", "encode", str(sample_dataset), "--tokenizer", str(out),
                            "--limit", "2"])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 2 and "\t<motion> <ds_" in lines[0]
    png = tmp_path / "usage.png"
    r = runner.invoke(app, ["tokenizer", "report", str(out), "--plot", str(png),
                            "--dataset", str(sample_dataset)])
    assert r.exit_code == 0, r.output
    assert "MPJPE" in r.output and "perplexity" in r.output and png.stat().st_size > 1000
    assert all(part in r.output for part in ("torso", "l_arm", "r_arm", "l_leg", "r_leg"))
    r = runner.invoke(app, ["tokenizer", "train", str(sample_dataset), "-o", str(tmp_path / "t"),
                            "--steps", "0"])
    assert r.exit_code == 1 and "steps" in r.output


def test_two_datasets_share_one_vocabulary(sample_dataset, fixtures_dir, tmp_path):
    """Real Emotion-Gait fixtures (16 joints: no chest, no feet) train with the sample set."""
    eg = tmp_path / "eg"
    run_convert(ConvertConfig(inputs=[str(fixtures_dir / "npy")], out_dir=eg, workers=1))
    cfg = TokenizerConfig(steps=10, held_out_fraction=0.2, seed=0, **TINY)
    report = train_tokenizer([sample_dataset, eg], tmp_path / "tok", cfg, progress=False)
    assert report.held_out_clips == 3 + 1 and report.train_clips == 12 + 2  # per-dataset split
    tok = load_tokenizer(tmp_path / "tok")
    assert {"<ds_sd>", "<ds_npy>", "<ds_other>"} <= set(tok.vocabulary())
    meta = tok.meta
    assert [d["clips"] for d in meta["datasets"]] == [15, 3]
    for clip in load_clips(eg):
        assert not clip.joint_mask.all()
        assert tok.tokens_text(clip).split(" ")[1] == "<ds_npy>"
        rec = tok.reconstruct(clip)
        assert np.isfinite(rec[:, clip.joint_mask]).all()


# -- semantic level: descriptor-level tokens ---------------------------------------------------
def test_semantic_tokens_in_text_and_vocabulary(trained, sample_dataset):
    from eai.toolkit.descriptors import DESCRIPTOR_NAMES, compute_descriptors

    tok = load_tokenizer(trained[0])
    assert tok.levels is not None and tok.levels.names == DESCRIPTOR_NAMES
    vocab = tok.vocabulary()
    n_emb = len(tok.emotion["embedding_codebook"]) if tok.emotion["trained"] else 0
    assert len(vocab) == len(set(vocab)) == 3 + 2 + 512 + 2 + 3 * len(DESCRIPTOR_NAMES) + n_emb
    assert {"<semantic>", "</semantic>", "<sem_root_speed_mean_low>",
            "<sem_root_speed_mean_typical>", "<sem_turn_rate_high>"} <= set(vocab)
    clip = load_clips(sample_dataset)[0]
    sem = tok.semantic_tokens(clip)
    assert len(sem) == len(DESCRIPTOR_NAMES) - len(compute_descriptors(clip).missing) > 30
    assert all(t.startswith("<sem_") and t.rsplit("_", 1)[1] in ("low>", "typical>", "high>")
               for t in sem)
    tokens = tok.tokens_text(clip).split(" ")
    assert tokens[:3] == ["<motion>", "<ds_sd>", "<semantic>"]
    end = tokens.index("</semantic>")
    emb = tok.embedding_tokens([clip]) if tok.has_emotion_level else []  # learned code last
    assert tokens[3:end] == sem + emb and tokens[end + 1] == "<t>" and set(tokens) <= set(vocab)
    assert "<sem" not in tok.tokens_text(clip, semantic=False)
    # the semantic block alone (finetuning's --align-view semantic)
    assert tok.tokens_text(clip, spatio_temporal=False).split(" ") == tokens[:end + 1] + [
        "</motion>"]
    # NaN descriptors are skipped: no left wrist -> the wrist and arm descriptors
    masked = dataclasses.replace(clip, positions=clip.positions.copy(),
                                 joint_mask=clip.joint_mask.copy())
    masked.positions[:, JOINT_INDEX["l_wrist"]] = np.nan
    masked.joint_mask[JOINT_INDEX["l_wrist"]] = False
    missing = compute_descriptors(masked).missing
    assert "wrist_speed_mean" in missing and not any(
        f"<sem_{n}_" in t for n in missing for t in tok.semantic_tokens(masked))
    assert len(tok.semantic_tokens(masked)) == len(DESCRIPTOR_NAMES) - len(missing)
    assert set(tok.tokens_text(masked).split(" ")) <= set(vocab)
    # deterministic: same tokens from a second load and a second call
    assert load_tokenizer(trained[0]).semantic_tokens(clip) == sem == tok.semantic_tokens(clip)


def test_tokenizer_without_descriptor_levels_still_loads(trained, sample_dataset, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(trained[0], old)
    meta = json.loads((old / "tokenizer.json").read_text())
    del meta["descriptor_levels"]
    (old / "tokenizer.json").write_text(json.dumps(meta))
    tok, new = load_tokenizer(old), load_tokenizer(trained[0])
    clip = load_clips(sample_dataset)[0]
    assert tok.levels is None and tok.semantic_tokens(clip) == []
    assert "<semantic>" not in tok.tokens_text(clip) and "<semantic>" not in tok.vocabulary()
    assert tok.tokens_text(clip) == new.tokens_text(clip, semantic=False)
    assert new.vocabulary()[: len(tok.vocabulary())] == tok.vocabulary()  # appended at the end


def test_descriptor_levels_are_per_action(trained, sample_dataset):
    from eai.toolkit.descriptors import (
        DescriptorLevels,
        compute_descriptors,
        descriptor_matrix,
    )
    from eai.toolkit.tokenizer.train import fit_descriptor_levels

    clips = load_clips(sample_dataset)  # 15 "walk" clips, all trained on (no held-out)
    stored = load_tokenizer(trained[0]).levels.to_dict()
    assert stored == DescriptorLevels().fit(descriptor_matrix(clips),
                                            ["walk"] * len(clips)).to_dict()
    assert stored["group_counts"] == {"walk": 15} and "walk" in stored["groups"]
    # a second action, slower (the root moves at a third of the speed): its own terciles
    slow = [dataclasses.replace(c, action="stroll", clip_id=c.clip_id + "-slow",
                                positions=c.positions * np.array([1 / 3, 1, 1 / 3], np.float32))
            for c in clips[:8]]
    levels = fit_descriptor_levels(clips + slow)
    assert levels.group_counts == {"stroll": 8, "walk": 15}
    walk_th, stroll_th = (levels.thresholds("root_speed_mean", a) for a in ("walk", "stroll"))
    assert stroll_th[1] < walk_th[0]
    tok = load_tokenizer(trained[0])
    tok.levels = levels
    fastest = max(slow, key=lambda c: float(np.abs(np.diff(c.positions[:, 0, 2])).sum()))
    assert "<sem_root_speed_mean_high>" in tok.semantic_tokens(fastest)  # fast for a stroll
    as_walk = dataclasses.replace(fastest, action="walk")
    assert "<sem_root_speed_mean_low>" in tok.semantic_tokens(as_walk)  # slow for a walk
    other = dataclasses.replace(fastest, action="dance")  # unknown action: global terciles
    assert tok.semantic_tokens(other) == [
        f"<sem_{n}_{lv}>" for n, lv in levels.levels(compute_descriptors(other).values).items()
        if lv is not None]


def test_cli_encode_no_semantic(trained, sample_dataset):
    from typer.testing import CliRunner

    from eai.cli import app

    args = ["tokenizer", "encode", str(sample_dataset), "--tokenizer", str(trained[0]),
            "--limit", "1"]
    runner = CliRunner()
    with_sem, without = runner.invoke(app, args), runner.invoke(app, args + ["--no-semantic"])
    assert with_sem.exit_code == 0 and without.exit_code == 0, with_sem.output + without.output
    assert "\t<motion> <ds_sd> <semantic> <sem_" in with_sem.output
    assert "<semantic>" not in without.output and "\t<motion> <ds_sd> <t> " in without.output


def test_emotion_level_is_trained_saved_and_tokenised(trained, sample_dataset):
    out, _ = trained
    tok = load_tokenizer(out)
    assert tok.emotion["trained"] and (out / "classifier" / "classifier.json").is_file()
    clips = list(iter_clips(sample_dataset))[:6]
    proba, classes = tok.emotion_probabilities(clips)
    assert proba.shape == (6, len(classes)) and np.allclose(proba.sum(1), 1.0)
    assert set(classes) == {c.emotion for c in iter_clips(sample_dataset)}
    text = tok.tokens_text(clips[0])
    emb = [t for t in text.split() if t.startswith("<emb_")]
    assert len(emb) == 1 and emb[0] in tok.vocabulary()
    assert text.index(emb[0]) < text.index("</semantic>")
    assert load_tokenizer(out).tokens_text(clips[0]) == text  # a fresh load, same tokens


def test_code_emotions_are_the_classifier_read_of_each_code_centre(trained, sample_dataset):
    """code_emotions gives, per `<emb_K>` centre, what the classifier would say of a clip whose
    embedding sits exactly there: a clip's own embedding gives its own probabilities."""
    out, _ = trained
    tok = load_tokenizer(out)
    probs, classes = tok.code_emotions()
    assert probs.shape == (len(tok.emotion["embedding_codebook"]), len(classes))
    assert np.allclose(probs.sum(1), 1.0) and classes == list(tok.classifier.classes)
    clips = list(iter_clips(sample_dataset))[:4]
    emb = tok.classifier.embed(clips)
    saved = tok.emotion["embedding_codebook"]
    tok.emotion["embedding_codebook"] = emb.tolist()  # each clip its own centre
    try:
        own, _ = tok.code_emotions()
    finally:
        tok.emotion["embedding_codebook"] = saved
    want, _ = tok.emotion_probabilities(clips)
    np.testing.assert_allclose(own, want, atol=1e-5)


def test_emotion_level_needs_enough_labelled_clips(tmp_path, sample_dataset):
    from eai.toolkit.tokenizer.emotion import train_emotion_level

    clips = [c for c in iter_clips(sample_dataset)][:4]
    info = train_emotion_level(clips, tmp_path, seed=0)
    assert info["trained"] is False and "at least 2 emotions" in info["reason"]


def test_evaluate_takes_the_classifier_configuration_from_a_tokenizer(trained, sample_dataset,
                                                                      tmp_path):
    from typer.testing import CliRunner

    from eai.cli import app

    out, _ = trained
    result = CliRunner().invoke(app, ["evaluate", "--dataset", str(sample_dataset), "--folds",
                                      "3", "--repeats", "1", "--tokenizer", str(out), "-o",
                                      str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("mgst") and "accuracy" in lines[-1]
    bad = CliRunner().invoke(app, ["evaluate", "--dataset", str(sample_dataset), "--tokenizer",
                                   str(tmp_path)])
    assert bad.exit_code == 1
