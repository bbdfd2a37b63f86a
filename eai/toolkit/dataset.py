"""The unified dataset on disk: manifest.json + clips-*.parquet shards + report.jsonl.

One Parquet row per clip; motion is flattened into `positions` (list<float32>) with its shape in
`num_frames` x `num_joints` x 3. Every file is written to a temporary name and renamed into
place, so a reader never sees half a shard or half a manifest. Readable by pandas, pyarrow,
DuckDB and Hugging Face `datasets` (`load_dataset("parquet", data_files=".../clips-*.parquet")`).
"""

from __future__ import annotations

import difflib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eai.toolkit.clip import Clip, SourceInfo
from eai.toolkit.skeleton import NUM_JOINTS

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
REPORT = "report.jsonl"
SHARD_GLOB = "clips-*.parquet"
ROW_GROUP_CLIPS = 32  # rows per Parquet row group: what iter_clips holds in memory at once

SCHEMA = pa.schema([
    ("clip_id", pa.string()),
    ("dataset", pa.string()),
    ("emotion", pa.string()),
    ("label_raw", pa.string()),
    ("subject", pa.string()),
    ("action", pa.string()),
    ("fps", pa.float32()),
    ("num_frames", pa.int32()),
    ("num_joints", pa.int32()),
    ("duration_s", pa.float32()),
    ("positions", pa.list_(pa.float32())),
    ("joint_mask", pa.list_(pa.bool_())),
    ("source_path", pa.string()),
    ("source_format", pa.string()),
    ("source_sha256", pa.string()),
    ("source_fps", pa.float32()),
    ("source_joint_names", pa.list_(pa.string())),
    ("source_units", pa.string()),
    ("profile", pa.string()),
    ("notes", pa.list_(pa.string())),
    ("extra", pa.string()),  # JSON object: label fields beyond the named ones
])

# Columns that describe clips without their motion: cheap to read for listings and summaries.
META_COLUMNS = [f.name for f in SCHEMA if f.name != "positions"]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def clips_to_table(clips: list[Clip]) -> pa.Table:
    cols: dict[str, list] = {f.name: [] for f in SCHEMA}
    for c in clips:
        cols["clip_id"].append(c.clip_id)
        cols["dataset"].append(c.dataset)
        cols["emotion"].append(c.emotion)
        cols["label_raw"].append(c.label_raw)
        cols["subject"].append(c.subject)
        cols["action"].append(c.action)
        cols["fps"].append(c.fps)
        cols["num_frames"].append(c.num_frames)
        cols["num_joints"].append(NUM_JOINTS)
        cols["duration_s"].append(c.duration_s)
        cols["positions"].append(c.positions.reshape(-1))
        cols["joint_mask"].append(c.joint_mask.tolist())
        cols["source_path"].append(c.source.path)
        cols["source_format"].append(c.source.format)
        cols["source_sha256"].append(c.source.sha256)
        cols["source_fps"].append(c.source.fps)
        cols["source_joint_names"].append(c.source.joint_names)
        cols["source_units"].append(c.source.units)
        cols["profile"].append(c.source.profile)
        cols["notes"].append(c.source.notes)
        cols["extra"].append(json.dumps(c.extra, sort_keys=True))
    return pa.table(cols, schema=SCHEMA)


def row_to_clip(row: dict[str, Any]) -> Clip:
    shape = (row["num_frames"], row["num_joints"], 3)
    source = SourceInfo(path=row["source_path"], format=row["source_format"],
                        sha256=row["source_sha256"], fps=float(row["source_fps"]),
                        joint_names=list(row["source_joint_names"] or []),
                        units=row["source_units"], profile=row["profile"],
                        notes=list(row["notes"] or []))
    return Clip(clip_id=row["clip_id"], dataset=row["dataset"],
                positions=np.asarray(row["positions"], dtype=np.float32).reshape(shape),
                joint_mask=np.asarray(row["joint_mask"], dtype=bool), fps=float(row["fps"]),
                source=source, emotion=row["emotion"], label_raw=row["label_raw"],
                subject=row["subject"], action=row["action"],
                extra=json.loads(row["extra"] or "{}"))


def write_shard(path: Path, clips: list[Clip]) -> None:
    """Write one shard atomically (temporary file in the same folder, then rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(clips_to_table(clips), tmp, compression="zstd",
                       row_group_size=ROW_GROUP_CLIPS)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def shard_paths(dataset_dir: str | Path) -> list[Path]:
    return sorted(Path(dataset_dir).glob(SHARD_GLOB))


def read_versioned_json(path: Path, key: str, supported: int, missing: str) -> dict[str, Any]:
    """An eai metadata file (manifest.json, tokenizer.json, eai.json, ...): one clear error when
    it is absent (`missing` says how to make one), not JSON, or newer than this eai."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(missing)
    try:
        data = json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if data.get(key, 0) > supported:
        raise ValueError(f"{path}: {key.replace('_', ' ')} {data[key]} is newer than this eai "
                         f"understands ({supported}); upgrade eai")
    return data


def read_manifest(dataset_dir: str | Path) -> dict[str, Any]:
    return read_versioned_json(
        Path(dataset_dir) / MANIFEST, "schema_version", SCHEMA_VERSION,
        f"{dataset_dir}: no {MANIFEST}; is this an eai dataset? (make one with "
        f"`eai convert FILES -o {dataset_dir}`)")


def read_table(dataset_dir: str | Path, columns: list[str] | None = None) -> pa.Table:
    """All shards as one Arrow table (META_COLUMNS skips the motion)."""
    paths = shard_paths(dataset_dir)
    if not paths:
        return SCHEMA.empty_table().select(columns or SCHEMA.names)
    return pa.concat_tables(pq.read_table(p, columns=columns) for p in paths)


def iter_clips(dataset_dir: str | Path, clip_ids: Iterable[str] | None = None,
               emotion_only: bool = False) -> Iterator[Clip]:
    """Clips of a dataset, one row group at a time (memory stays at one row group)."""
    wanted = set(clip_ids) if clip_ids is not None else None
    for path in shard_paths(dataset_dir):
        pf = pq.ParquetFile(path)
        for i in range(pf.num_row_groups):
            for row in pf.read_row_group(i).to_pylist():
                if wanted is not None and row["clip_id"] not in wanted:
                    continue
                if emotion_only and not row["emotion"]:
                    continue
                yield row_to_clip(row)


def load_clips(dataset_dir: str | Path, **kw) -> list[Clip]:
    return list(iter_clips(dataset_dir, **kw))


def read_report(dataset_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(dataset_dir) / REPORT
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_clip(dataset_dir: str | Path, clip_id: str) -> Clip:
    """The clip with this id from a dataset; a unique end of the id (e.g. the file stem) will do."""
    read_manifest(dataset_dir)  # a clear error when this is not a dataset
    ids = read_table(dataset_dir, ["clip_id"]).column("clip_id").to_pylist()
    if clip_id not in ids:
        ends = [i for i in ids if i.endswith("/" + clip_id.strip("/"))]
        if len(ends) != 1:
            hint = ([i for i in ids if clip_id in i]
                    or difflib.get_close_matches(clip_id, ids, n=3, cutoff=0.6))
            what = "matches several clips" if ends else "is not in the dataset"
            more = f" (and {len(hint) - 3} more)" if len(hint) > 3 else ""
            raise ValueError(f"{dataset_dir}: clip id {clip_id!r} {what}" + (
                f"; did you mean {', '.join(hint[:3])}{more}?" if hint else ""))
        clip_id = ends[0]
    return next(iter_clips(dataset_dir, clip_ids=[clip_id]))
