"""`eai convert`: many input files -> one unified dataset directory, in parallel and streaming.

How a run stays safe and resumable:
- Work happens in a sibling build folder `.<name>.partial/`. Shards are written there
  atomically, each with the report lines of its clips; only a finished run moves them into
  DATASET_DIR and writes manifest.json last. An interrupted run leaves DATASET_DIR untouched.
- Re-running the same command finds the build folder, keeps its finished shards and converts
  only the rest (the options must match; otherwise it starts over).
- `--append` keeps the dataset's existing clips and adds files whose clip ids it lacks.
- Results are consumed in input order from a bounded window of parallel tasks, so memory
  depends on the shard size and the window, never on the dataset size.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from eai import __version__
from eai.converters.base import ReadOptions
from eai.converters.discover import InputFile, discover_inputs
from eai.converters.errors import ConvertError
from eai.converters.labels import LabelConfig, label_maps_in_use, resolve_labels
from eai.converters.registry import reader_for
from eai.converters.sidecar import load_sidecar
from eai.toolkit import dataset as ds
from eai.toolkit.clip import Clip
from eai.toolkit.skeleton import CANONICAL_JOINTS, CANONICAL_PARENTS

BUILD_STATE = "build.json"


@dataclass
class ConvertConfig:
    inputs: list[str]
    out_dir: Path
    read: ReadOptions = field(default_factory=ReadOptions)
    labels: LabelConfig = field(default_factory=LabelConfig)
    dataset: str | None = None
    workers: int = 0  # 0: all cores
    strict: bool = False
    append: bool = False
    shard_mb: float = 64.0  # motion bytes per shard before it is written out
    command: str = ""


@dataclass
class ConvertResult:
    out_dir: Path
    manifest: dict[str, Any]
    report: list[dict[str, Any]]  # this run's lines (including resumed ones)
    resumed: int = 0  # clips kept from an interrupted run


class StrictError(RuntimeError):
    """--strict and a file failed: nothing is written to the dataset."""


def convert_file(item: InputFile, opts: ReadOptions, labels: LabelConfig) -> dict[str, Any]:
    """Convert one file; never raises for bad input. Returns a report line (+ the clip)."""
    started = time.perf_counter()
    line: dict[str, Any] = {"path": str(item.path), "clip_id": item.clip_id}
    entry = reader_for(item.path)
    if entry is None:
        return {**line, "status": "skipped", "reason": f"unsupported suffix {item.path.suffix}"}
    fmt, reader = entry
    line["format"] = fmt
    try:
        clip = reader(item.path, opts)
        lab = resolve_labels(item.path, item.rel_path, item.clip_id, load_sidecar(item.path),
                             labels)
    except ConvertError as e:
        return {**line, "status": "error", "reason": e.reason, "position": e.position,
                "fix": e.fix, "message": str(e)}
    except Exception as e:  # a reader bug must not lose the batch; keep its type for triage
        return {**line, "status": "error", "reason": f"{type(e).__name__}: {e}",
                "message": f"{item.path}: {type(e).__name__}: {e}"}
    clip.clip_id, clip.dataset = item.clip_id, item.dataset
    clip.emotion, clip.label_raw = lab.emotion, lab.label_raw
    clip.subject, clip.action, clip.extra = lab.subject, lab.action, lab.extra
    line.update(status="ok", profile=clip.source.profile, frames=clip.num_frames,
                emotion=clip.emotion, label_raw=clip.label_raw, label_source=lab.label_source,
                notes=clip.source.notes, seconds=round(time.perf_counter() - started, 4))
    line["_clip"] = clip
    return line


def _options_fingerprint(config: ConvertConfig, items: list[InputFile]) -> str:
    state = {
        "read": asdict(config.read), "dataset": config.dataset,
        "pattern": config.labels.pattern.pattern if config.labels.pattern else None,
        "label_map": config.labels.label_map,
        "table": sorted(config.labels.table.rows) if config.labels.table else None,
        "files": [str(i.path) for i in items], "append": config.append,
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()


def _build_dir(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.partial"


def _prepare_build(build: Path, fingerprint: str) -> tuple[list[dict], int]:
    """Reuse a matching interrupted build; returns its report lines and next shard index."""
    state_path = build / BUILD_STATE
    if build.exists():
        same = state_path.is_file() and json.loads(state_path.read_text()).get(
            "fingerprint") == fingerprint
        if not same:
            shutil.rmtree(build)
    build.mkdir(parents=True, exist_ok=True)
    if not state_path.is_file():
        ds.atomic_write_json(state_path, {"fingerprint": fingerprint, "shards": []})
    state = json.loads(state_path.read_text())
    lines = [ln for s in state["shards"] for ln in s["report"]]
    return lines, len(state["shards"])


def _parallel(items: list[InputFile], config: ConvertConfig,
              convert: Callable[..., dict[str, Any]] = convert_file
              ) -> Iterator[dict[str, Any]]:
    """Report lines in input order; at most 2 x workers files in flight.

    A worker that dies (a native library crashing on a corrupt file) breaks the whole pool and
    every file in flight with it. Those files are then retried one by one, each in a process
    of its own, so only the file that really crashes is reported as an error.
    """
    workers = config.workers or os.cpu_count() or 1
    if workers == 1 or len(items) <= 1:
        for item in items:
            yield convert(item, config.read, config.labels)
        return
    ctx = mp.get_context("spawn")  # no fork: the progress bar runs a thread
    todo = deque(items)
    while todo:
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            window: deque = deque()
            lost: list[InputFile] = []
            try:
                while todo or window:
                    while todo and len(window) < 2 * workers:
                        item = todo.popleft()
                        window.append((item, pool.submit(convert, item, config.read,
                                                         config.labels)))
                    item, future = window[0]
                    line = future.result()
                    window.popleft()
                    yield line
            except cf.process.BrokenProcessPool:
                lost = [item for item, _ in window]
        for item in lost:
            yield _isolated(item, config, convert, ctx)


def _isolated(item: InputFile, config: ConvertConfig, convert: Callable[..., dict[str, Any]],
              ctx) -> dict[str, Any]:
    with cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        try:
            return pool.submit(convert, item, config.read, config.labels).result()
        except cf.process.BrokenProcessPool:
            reason = ("the reader process crashed on this file (a native library failed on "
                      "corrupt data)")
            return {"path": str(item.path), "clip_id": item.clip_id, "status": "error",
                    "reason": reason, "fix": "check or re-export the file",
                    "message": f"{item.path}: {reason}"}


def run_convert(config: ConvertConfig,
                on_line: Callable[[dict[str, Any]], None] | None = None,
                on_total: Callable[[int], None] | None = None,
                convert: Callable[..., dict[str, Any]] = convert_file) -> ConvertResult:
    out_dir = Path(config.out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / ds.MANIFEST).is_file():
        raise FileExistsError(f"{out_dir} exists and is not an eai dataset (no {ds.MANIFEST}); "
                              "pick a new or empty output folder")
    items = discover_inputs(config.inputs, config.dataset)
    existing_ids: set[str] = set()
    existing_report: list[dict] = []
    if config.append and (out_dir / ds.MANIFEST).is_file():
        existing_ids = set(ds.read_table(out_dir, ["clip_id"]).column("clip_id").to_pylist())
        existing_report = ds.read_report(out_dir)

    build = _build_dir(out_dir)
    resumed_lines, shard_index = _prepare_build(build, _options_fingerprint(config, items))
    done_paths = {ln["path"] for ln in resumed_lines}
    resumed = sum(1 for ln in resumed_lines if ln["status"] == "ok")
    first_new_shard = len(ds.shard_paths(out_dir)) if config.append else 0

    report: list[dict] = list(resumed_lines)
    todo: list[InputFile] = []
    seen_ids = set(existing_ids) | {ln["clip_id"] for ln in resumed_lines if ln["status"] == "ok"}
    for item in items:
        if str(item.path) in done_paths:
            continue
        if item.clip_id in seen_ids:
            why = ("already in the dataset" if item.clip_id in existing_ids else
                   "another input file has the same clip id (same path without suffix)")
            line = {"path": str(item.path), "clip_id": item.clip_id, "status": "skipped",
                    "reason": why, "already_present": item.clip_id in existing_ids}
            report.append(line)
            if on_line:
                on_line(line)
            continue
        seen_ids.add(item.clip_id)
        todo.append(item)
    if on_total:
        on_total(len(todo))

    pending_clips: list[Clip] = []
    pending_lines: list[dict] = []
    pending_bytes = 0
    shard_limit = config.shard_mb * 1e6

    def flush() -> None:
        nonlocal pending_clips, pending_lines, pending_bytes, shard_index
        if not pending_lines:
            return
        state = json.loads((build / BUILD_STATE).read_text())
        name = None
        if pending_clips:
            name = f"clips-{first_new_shard + shard_index:05d}.parquet"
            ds.write_shard(build / name, pending_clips)
        state["shards"].append({"file": name, "report": pending_lines})
        ds.atomic_write_json(build / BUILD_STATE, state)
        shard_index += 1
        pending_clips, pending_lines, pending_bytes = [], [], 0

    for line in _parallel(todo, config, convert):
        clip = line.pop("_clip", None)
        if line["status"] == "error" and config.strict:
            raise StrictError(line["message"])
        report.append(line)
        pending_lines.append(line)
        if clip is not None:
            pending_clips.append(clip)
            pending_bytes += clip.positions.nbytes
        if on_line:
            on_line(line)
        if pending_bytes >= shard_limit:
            flush()
    flush()

    manifest = _finish(build, out_dir, config, existing_report, report)
    return ConvertResult(out_dir=out_dir, manifest=manifest, report=report, resumed=resumed)


def _finish(build: Path, out_dir: Path, config: ConvertConfig, existing_report: list[dict],
            report: list[dict]) -> dict[str, Any]:
    """Move the build into place; manifest.json is written last."""
    new_shards = sorted(build.glob(ds.SHARD_GLOB))
    if config.append and out_dir.is_dir():
        for shard in new_shards:
            os.replace(shard, out_dir / shard.name)
        # Files already in the dataset keep their original report line.
        new = [ln for ln in report if not ln.get("already_present")]
        reported = {(ln["path"], ln["clip_id"]) for ln in new}
        lines = [ln for ln in existing_report
                 if (ln["path"], ln["clip_id"]) not in reported] + new
        shutil.rmtree(build)
    else:
        old = out_dir.parent / f".{out_dir.name}.old"
        if old.exists():
            shutil.rmtree(old)
        (build / BUILD_STATE).unlink()
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(build, out_dir)
        shutil.rmtree(old, ignore_errors=True)
        lines = report
    ds.atomic_write_bytes(out_dir / ds.REPORT,
                          "".join(json.dumps(ln) + "\n" for ln in lines).encode())
    manifest = build_manifest(out_dir, config, lines)
    ds.atomic_write_json(out_dir / ds.MANIFEST, manifest)
    return manifest


def build_manifest(out_dir: Path, config: ConvertConfig, report: list[dict]) -> dict[str, Any]:
    table = ds.read_table(out_dir, ["dataset", "emotion", "label_raw", "num_frames"])
    df = table.to_pandas()
    statuses: dict[str, int] = {}
    for ln in report:
        statuses[ln["status"]] = statuses.get(ln["status"], 0) + 1
    by_dataset = df.groupby("dataset").size().to_dict() if len(df) else {}
    by_emotion = df["emotion"].fillna("(none)").value_counts().to_dict() if len(df) else {}
    return {
        "schema_version": ds.SCHEMA_VERSION,
        "eai_version": __version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": config.command,
        "skeleton": {"joints": list(CANONICAL_JOINTS), "parents": CANONICAL_PARENTS,
                     "units": "m", "up": "+Y", "facing_at_first_frame": "+Z",
                     "floor": "y = 0"},
        "fps": config.read.fps,
        "label_vocabulary": sorted(e for e in df["emotion"].dropna().unique()) if len(df)
        else [],
        "label_maps": (label_maps_in_use() if config.labels.label_map is None
                       else {"user": config.labels.label_map}),
        "options": {"read": asdict(config.read), "dataset": config.dataset,
                    "label_pattern": config.labels.pattern.pattern
                    if config.labels.pattern else None},
        "counts": {
            "clips": int(len(df)), "frames": int(df["num_frames"].sum()) if len(df) else 0,
            "files": statuses, "by_dataset": {k: int(v) for k, v in by_dataset.items()},
            "by_emotion": {k: int(v) for k, v in by_emotion.items()},
        },
        "shards": [p.name for p in ds.shard_paths(out_dir)],
    }
