"""`eai convert` end to end: mixed inputs, labels, bad files, atomic output, resume, append."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eai.converters.labels import LabelConfig, LabelTable, load_label_map
from eai.converters.pipeline import ConvertConfig, StrictError, run_convert
from eai.toolkit import dataset as ds

BANDAI_PICK = ["dataset-1_walk_happy_001.bvh", "dataset-1_walk_sad_001.bvh",
               "dataset-1_bow_chimpira_001.bvh", "dataset-1_run_normal_001.bvh"]


@pytest.fixture
def mixed_inputs(tmp_path, fixtures_dir, bandai_dir) -> Path:
    """A folder of real files of several formats and datasets (copied to tmp, never to git)."""
    root = tmp_path / "in"
    (root / "bandai").mkdir(parents=True)
    for name in BANDAI_PICK:
        shutil.copy(bandai_dir / "data" / name, root / "bandai" / name)
    (root / "gait").mkdir()
    for f in (fixtures_dir / "npy").glob("*.npy"):
        shutil.copy(f, root / "gait" / f.name)
    shutil.copy(fixtures_dir / "bvh" / "bvhpython_test_mocapbank.bvh", root / "mocapbank.bvh")
    return root


def _run(inputs, out, **kw) -> tuple:
    config = ConvertConfig(inputs=[str(i) for i in inputs], out_dir=out, workers=kw.pop(
        "workers", 1), **kw)
    return run_convert(config), config


def test_mixed_formats_labels_and_readers(mixed_inputs, tmp_path):
    out = tmp_path / "ds"
    result, _ = _run([mixed_inputs], out)
    manifest = ds.read_manifest(out)
    assert manifest["counts"]["clips"] == 8
    assert manifest["skeleton"]["joints"][0] == "pelvis"
    df = pd.concat(pd.read_parquet(p) for p in ds.shard_paths(out))
    by_id = df.set_index("clip_id")
    assert by_id.loc["in/bandai/dataset-1_walk_happy_001", "emotion"] == "happy"
    assert by_id.loc["in/bandai/dataset-1_run_normal_001", "emotion"] == "neutral"
    chimpira = by_id.loc["in/bandai/dataset-1_bow_chimpira_001"]
    assert chimpira["label_raw"] == "chimpira" and pd.isna(chimpira["emotion"])
    assert by_id.loc["in/bandai/dataset-1_walk_sad_001", "action"] == "walk"
    assert by_id.loc["in/gait/emotiongait_004_Angry", "emotion"] == "angry"
    assert by_id.loc["in/gait/emotiongait_004_Angry", "subject"] == "004"
    assert pd.isna(by_id.loc["in/mocapbank", "label_raw"])
    row = by_id.loc["in/bandai/dataset-1_walk_happy_001"]
    assert len(row["positions"]) == row["num_frames"] * 19 * 3
    # Clips come back through the toolkit, equal to what the reader gives directly.
    from eai.converters import bvh
    direct = bvh.read(mixed_inputs / "bandai" / "dataset-1_walk_happy_001.bvh")
    clip = next(ds.iter_clips(out, clip_ids=["in/bandai/dataset-1_walk_happy_001"]))
    np.testing.assert_array_equal(clip.positions, direct.positions)
    assert clip.emotion == "happy" and clip.source.profile == "bandai-namco"
    report = ds.read_report(out)
    assert len(report) == 8 and {ln["status"] for ln in report} == {"ok"}
    assert any("inferred from the joint count" in n
               for ln in report for n in ln.get("notes", []))


def test_hugging_face_datasets_reads_the_shards(mixed_inputs, tmp_path):
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "ds"
    _run([mixed_inputs / "gait"], out)
    hf = datasets.load_dataset("parquet", data_files=str(out / "clips-*.parquet"),
                               split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert len(hf) == 3 and set(hf["emotion"]) == {"sad", "angry", "happy"}
    assert len(hf[0]["positions"]) == hf[0]["num_frames"] * 57


BAD_FILES = {
    "truncated.bvh": lambda good: good[: len(good) // 2],
    "wrong_channels.bvh": lambda good: good.replace("CHANNELS 6", "CHANNELS 5", 1),
    "not_numbers.bvh": lambda good: re.sub(r"\n(-?[0-9.]+) ", "\nabc ", good, count=3),
}


@pytest.fixture
def batch_with_bad_files(tmp_path, fixtures_dir, bandai_dir) -> Path:
    root = tmp_path / "batch"
    root.mkdir()
    good = (bandai_dir / "data" / "dataset-1_walk_angry_001.bvh").read_text()
    shutil.copy(bandai_dir / "data" / "dataset-1_walk_angry_001.bvh", root)
    shutil.copy(fixtures_dir / "npy" / "emotiongait_002_Sad.npy", root)
    for name, mutate in BAD_FILES.items():
        (root / name).write_text(mutate(good))
    (root / "random.c3d").write_bytes(np.random.default_rng(0).bytes(4096))
    np.save(root / "pickled.npy", np.array([object()], dtype=object), allow_pickle=True)
    np.save(root / "features.npy", np.zeros((50, 263), dtype=np.float32))
    return root


def test_bad_files_are_reported_and_the_rest_converts(batch_with_bad_files, tmp_path):
    out = tmp_path / "ds"
    result, _ = _run([batch_with_bad_files], out)
    by_name = {Path(ln["path"]).name: ln for ln in ds.read_report(out)}
    assert by_name["dataset-1_walk_angry_001.bvh"]["status"] == "ok"
    assert by_name["emotiongait_002_Sad.npy"]["status"] == "ok"
    assert ds.read_manifest(out)["counts"]["clips"] == 2
    expectations = {"truncated.bvh": "line", "wrong_channels.bvh": "line",
                    "not_numbers.bvh": "non-numeric", "random.c3d": "", "pickled.npy": "pickle",
                    "features.npy": "(50, 263)"}
    for name, needle in expectations.items():
        line = by_name[name]
        assert line["status"] == "error", name
        assert needle in (line["message"] + str(line.get("position"))), (name, line)
        assert name in line["message"]


def test_strict_fails_and_writes_nothing(batch_with_bad_files, tmp_path):
    out = tmp_path / "ds"
    with pytest.raises(StrictError):
        _run([batch_with_bad_files], out, strict=True)
    assert not out.exists()


def test_rerun_gives_same_ids_and_append_adds_only_new(mixed_inputs, tmp_path):
    out = tmp_path / "ds"
    _run([mixed_inputs / "bandai"], out)
    ids_1 = sorted(ds.read_table(out, ["clip_id"]).column("clip_id").to_pylist())
    _run([mixed_inputs / "bandai"], out)
    ids_2 = sorted(ds.read_table(out, ["clip_id"]).column("clip_id").to_pylist())
    assert ids_1 == ids_2 and len(ids_2) == len(set(ids_2)) == 4
    # Append: the gait folder is new, the bandai folder is already there.
    result, _ = _run([mixed_inputs / "gait", mixed_inputs / "bandai"], out, append=True)
    ids_3 = ds.read_table(out, ["clip_id"]).column("clip_id").to_pylist()
    assert len(ids_3) == len(set(ids_3)) == 4 + 3
    skipped = [ln for ln in result.report if ln["status"] == "skipped"]
    assert len(skipped) == 4 and all(ln["already_present"] for ln in skipped)
    assert [ln["status"] for ln in ds.read_report(out)].count("ok") == 7
    assert ds.read_manifest(out)["counts"]["clips"] == 7
    # The same files under another dataset name are new clips, not duplicates.
    _run([mixed_inputs / "gait"], out, append=True, dataset="gait-copy")
    assert ds.read_manifest(out)["counts"]["clips"] == 10
    assert [ln["status"] for ln in ds.read_report(out)].count("ok") == 10


def test_interrupted_run_resumes_without_duplicates(mixed_inputs, tmp_path):
    out = tmp_path / "ds"
    seen = []

    def stop_after_three(line):
        seen.append(line)
        if len(seen) == 3:
            raise KeyboardInterrupt

    config = ConvertConfig(inputs=[str(mixed_inputs)], out_dir=out, workers=1, shard_mb=1e-6)
    with pytest.raises(KeyboardInterrupt):
        run_convert(config, on_line=stop_after_three)
    assert not out.exists()  # nothing half-written where users look
    result = run_convert(config)
    assert result.resumed == 2  # shards are flushed after each clip here; the 3rd was in flight
    ids = ds.read_table(out, ["clip_id"]).column("clip_id").to_pylist()
    assert len(ids) == len(set(ids)) == 8
    assert not (tmp_path / ".ds.partial").exists()


def test_parallel_workers_match_serial(mixed_inputs, tmp_path):
    _run([mixed_inputs], tmp_path / "serial", workers=1)
    _run([mixed_inputs], tmp_path / "parallel", workers=2)
    a = ds.read_table(tmp_path / "serial").to_pandas().set_index("clip_id").sort_index()
    b = ds.read_table(tmp_path / "parallel").to_pandas().set_index("clip_id").sort_index()
    assert list(a.index) == list(b.index)
    for cid in a.index:
        np.testing.assert_array_equal(a.loc[cid, "positions"], b.loc[cid, "positions"])


def test_label_pattern_table_and_map(tmp_path, fixtures_dir):
    root = tmp_path / "mine"
    root.mkdir()
    for i, f in enumerate(sorted((fixtures_dir / "npy").glob("*.npy"))):
        shutil.copy(f, root / f"subj{i}-take{i}-{['joyful', 'furious', 'gloomy'][i]}.npy")
    pattern = re.compile(r"(?P<subject>subj\d+)-take\d+-(?P<label>\w+)$")
    (tmp_path / "map.json").write_text(json.dumps({"furious": "angry", "gloomy": "sad"}))
    labels = LabelConfig(pattern=pattern, label_map=load_label_map(tmp_path / "map.json"))
    _run([root], tmp_path / "ds", labels=labels)
    df = ds.read_table(tmp_path / "ds", ["clip_id", "emotion", "label_raw", "subject"]
                       ).to_pandas().set_index("label_raw")
    assert df.loc["furious", "emotion"] == "angry" and df.loc["gloomy", "emotion"] == "sad"
    assert pd.isna(df.loc["joyful", "emotion"])  # outside the user's map
    assert df.loc["furious", "subject"] == "subj1"
    # A table beats the pattern; joined on the file name.
    (tmp_path / "labels.csv").write_text("file,emotion,subject\nsubj0-take0-joyful.npy,happy,P7\n")
    labels = LabelConfig(table=LabelTable(tmp_path / "labels.csv"), pattern=pattern)
    _run([root], tmp_path / "ds2", labels=labels)
    df = ds.read_table(tmp_path / "ds2", ["emotion", "subject", "label_raw"]).to_pandas()
    assert ("happy", "P7") in set(zip(df["emotion"], df["subject"]))


def test_cli_convert_prints_a_summary_and_fails_on_strict(batch_with_bad_files, tmp_path):
    cmd = [sys.executable, "-m", "eai.cli", "convert", str(batch_with_bad_files), "-o",
           str(tmp_path / "ds"), "--workers", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "not converted" in done.stdout and "features.npy" in done.stdout
    assert "angry" in done.stdout
    strict = subprocess.run(cmd[:-2] + ["--strict", "-o", str(tmp_path / "ds-strict")],
                            capture_output=True, text=True, timeout=300)
    assert strict.returncode == 1 and "error:" in strict.stderr
    assert not (tmp_path / "ds-strict").exists()


def test_output_folder_that_is_not_a_dataset_is_left_alone(tmp_path, mixed_inputs):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("do not delete")
    with pytest.raises(FileExistsError, match="not an eai dataset"):
        _run([mixed_inputs / "gait"], out)
    assert (out / "thesis.tex").exists()


def test_every_shared_fixture_converts(fixtures_dir, tmp_path):
    result, _ = _run([fixtures_dir], tmp_path / "ds", workers=2)
    files = [p for p in fixtures_dir.rglob("*") if p.suffix in (".bvh", ".c3d", ".npy")]
    assert len(result.report) == len(files) == 12
    bad = [ln for ln in result.report if ln["status"] != "ok"]
    assert not bad, bad
    profiles = {ln["profile"] for ln in result.report}
    assert {"cmu", "mixamo", "mocapbank", "emotion-gait-16", "plug-in-gait", "qualisys-gait",
            "cluster-markers"} <= profiles


def crash_on_files_named_crash(item, opts, labels):
    """A converter whose process dies on some files, as a segfaulting native reader would."""
    import os

    from eai.converters.pipeline import convert_file
    if "crash" in item.path.name:
        os._exit(139)
    return convert_file(item, opts, labels)


def test_a_crashing_worker_loses_only_its_own_file(tmp_path, fixtures_dir):
    root = tmp_path / "in"
    root.mkdir()
    for f in sorted((fixtures_dir / "npy").glob("*.npy")):
        shutil.copy(f, root / f.name)
    shutil.copy(fixtures_dir / "npy" / "emotiongait_002_Sad.npy", root / "b_crash_Sad.npy")
    config = ConvertConfig(inputs=[str(root)], out_dir=tmp_path / "ds", workers=2)
    result = run_convert(config, convert=crash_on_files_named_crash)
    status = {Path(ln["path"]).name: ln["status"] for ln in result.report}
    assert status.pop("b_crash_Sad.npy") == "error"
    assert set(status.values()) == {"ok"} and len(status) == 3
    crashed = next(ln for ln in result.report if "crash" in ln["path"])
    assert "crashed" in crashed["reason"]
    assert ds.read_manifest(tmp_path / "ds")["counts"]["clips"] == 3
