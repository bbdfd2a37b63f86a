"""Fixed train/test splits stored with a dataset (`<dataset>/splits.json`).

Drafting (`--split`), finetuning (evaluation clips never train; checked) and `eai evaluate
--model` read the same file, so a split is made once and then never drifts. Clips are split
stratified by emotion; with `group_by` ("action" or "subject") whole groups go to one side, so
the test set holds contents (or people) the model never saw. Unlabelled clips always go to
train: they carry no answer to test.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import eai

SPLITS_FILE = "splits.json"
FORMAT_VERSION = 1


class SplitError(ValueError):
    pass


def make_split(clip_ids: Sequence[str], emotions: Sequence[str | None],
               groups: Sequence[str | None] | None = None, test_fraction: float = 0.3,
               seed: int = 0) -> dict[str, list[str]]:
    """{"train": [...], "test": [...]} (sorted ids): stratified by emotion, grouped if given."""
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise SplitError(f"test fraction {test_fraction}: use a number between 0 and 1, e.g. 0.3")
    ids = np.asarray(clip_ids, dtype=object)
    labels = np.asarray(["" if e is None else str(e) for e in emotions], dtype=object)
    labelled = labels != ""
    lab_ids, lab_y = ids[labelled], labels[labelled]
    if lab_ids.size < 4:
        raise SplitError(f"{lab_ids.size} clips carry an emotion; a split needs at least 4")
    classes, counts = np.unique(lab_y, return_counts=True)
    if groups is None:
        stratify = lab_y if counts.min() >= 2 else None
        train, test = train_test_split(lab_ids, test_size=test_fraction, random_state=seed,
                                       stratify=stratify)
    else:
        g = np.asarray(["" if x is None else str(x) for x in groups], dtype=object)[labelled]
        n_splits = max(2, int(round(1.0 / test_fraction)))
        if np.unique(g).size < n_splits:
            raise SplitError(f"only {np.unique(g).size} groups for a 1/{n_splits} test share; "
                             f"lower --test-fraction or split without --group-by")
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        train_idx, test_idx = next(cv.split(lab_ids, lab_y, g))
        train, test = lab_ids[train_idx], lab_ids[test_idx]
    train = list(train) + list(ids[~labelled])
    return {"train": sorted(map(str, train)), "test": sorted(map(str, test))}


def write_splits(dataset_dir: str | Path, test_fraction: float = 0.3,
                 group_by: str | None = None, seed: int = 0, force: bool = False) -> dict[str, Any]:
    """Make the dataset's split and save it as splits.json (refuses to replace one unless
    force: models trained on the old split would otherwise be evaluated on their training
    clips)."""
    from eai.toolkit.dataset import atomic_write_json, read_manifest, read_table

    dataset_dir = Path(dataset_dir)
    manifest = read_manifest(dataset_dir)
    path = dataset_dir / SPLITS_FILE
    if path.exists() and not force:
        raise SplitError(f"{path} exists; models may have been trained on it. Pass --force to "
                         f"replace it")
    if group_by not in (None, "action", "subject"):
        raise SplitError(f"--group-by {group_by!r}: use action or subject")
    table = read_table(dataset_dir, ["clip_id", "emotion", "action", "subject"]).to_pydict()
    groups = table[group_by] if group_by else None
    splits = make_split(table["clip_id"], table["emotion"], groups, test_fraction, seed)
    doc = {"format_version": FORMAT_VERSION, "kind": "eai.splits",
           "dataset": dataset_dir.name, "dataset_created_at": manifest.get("created_at"),
           "test_fraction": test_fraction, "group_by": group_by, "seed": seed,
           "counts": {k: len(v) for k, v in splits.items()}, "splits": splits,
           "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "eai_version": eai.__version__}
    atomic_write_json(path, doc)
    return doc


def read_splits(dataset_dir: str | Path, split_file: str | Path | None = None) -> dict[str, Any]:
    from eai.toolkit.dataset import read_versioned_json

    path = Path(split_file) if split_file else Path(dataset_dir) / SPLITS_FILE
    return read_versioned_json(path, "format_version", FORMAT_VERSION,
                               f"{path}: no split file; make one with `eai dataset split "
                               f"{dataset_dir}` (or pass --split-file)")


def split_ids(dataset_dir: str | Path, name: str, split_file: str | Path | None = None
              ) -> list[str]:
    """Clip ids of the named split ("train" / "test")."""
    doc = read_splits(dataset_dir, split_file)
    if name not in doc["splits"]:
        raise SplitError(f"split {name!r} not in {sorted(doc['splits'])}")
    return list(doc["splits"][name])
