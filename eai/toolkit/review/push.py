"""`eai review push`: drafts -> Label Studio tasks with predictions, idempotently.

A task is one clip (identified by data.clip_id), a prediction one model version's draft of it
(identified by model_version). Before importing, the project's tasks are listed: a clip that
has a task gets only the predictions of model versions it lacks (and its panels and priority
are refreshed); a clip without one gets a new task carrying all its predictions. So pushing the
same drafts twice creates nothing, and drafts of a new model version add predictions to the
existing tasks. New tasks are imported most informative first (mapping.priority), and the
project's first Data Manager tab orders every task that way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eai.toolkit.drafting.draft import Draft, read_drafts
from eai.toolkit.review.connection import Connection
from eai.toolkit.review.errors import ReviewError
from eai.toolkit.review.mapping import draft_prediction, draft_summary, task_data
from eai.toolkit.review.media import MEDIA_DIR, ensure_render, local_files_url, media_relpath
from eai.toolkit.review.project import ensure_project, ensure_storage, ensure_view, project_tasks
from eai.toolkit.review.template import choices_of, load_template

Progress = Callable[[str, int, int], None]  # (stage, done, total)
BATCH = 250  # tasks per import request (1,000 tasks: 10 requests of 100 took 2.7 s, 4 of 250 2.4 s)


@dataclass
class PushResult:
    project_id: int
    project_created: bool
    tasks_created: int = 0
    predictions_added: int = 0
    tasks_updated: int = 0
    unchanged: int = 0  # drafts whose clip already had a prediction of that model version
    rendered: int = 0
    render_cached: int = 0
    problems: list[str] = field(default_factory=list)  # skipped drafts, with the reason


def _read(drafts_path: Path, problems: list[str]) -> list[Draft]:
    """Drafts in file order; a repeated (clip, model version) keeps the first."""
    seen: set[tuple[str, str]] = set()
    out = []
    for n, d in enumerate(read_drafts(drafts_path), 1):
        key = (d.clip_id, d.model_version)
        if key in seen:
            problems.append(f"{drafts_path}: draft {n} repeats clip {d.clip_id!r} of model "
                            f"{d.model_version!r}; kept the first")
            continue
        seen.add(key)
        out.append(d)
    return out


def _labels(drafts: list[Draft], dataset: Path) -> list[str]:
    from eai.toolkit.dataset import read_manifest

    labels = choices_of(load_template())
    vocab = read_manifest(dataset).get("label_vocabulary") or []
    for d in drafts:
        vocab = [*vocab, *([d.emotion] if d.emotion else []), *(d.probabilities or {})]
    return labels + sorted({v for v in vocab if v and v not in labels})


def _media_root(conn: Connection) -> Path:
    if conn.files_root is None:
        raise ReviewError(f"{conn.url} is not the local server: pass --media-root, the folder "
                          f"that server serves local files from (its LOCAL_FILES_DOCUMENT_ROOT, "
                          f"with LOCAL_FILES_SERVING_ENABLED=true), on this machine")
    return conn.files_root


def push(drafts_path: str | Path, dataset: str | Path, project: str, conn: Connection,
         on_progress: Progress | None = None) -> PushResult:
    from eai.toolkit.dataset import iter_clips, read_manifest, read_table

    drafts_path, dataset = Path(drafts_path), Path(dataset)
    read_manifest(dataset)  # a clear error when this is not a dataset
    progress = on_progress or (lambda *_: None)
    problems: list[str] = []
    drafts = _read(drafts_path, problems)
    meta = {r["clip_id"]: r for r in read_table(dataset, ["clip_id", "fps", "dataset", "action"]
                                                ).to_pylist()}
    kept = []
    for n, d in enumerate(drafts, 1):
        if d.clip_id in meta:
            kept.append(d)
        else:
            problems.append(f"{drafts_path}: draft {n}: clip {d.clip_id!r} is not in dataset "
                            f"{dataset}; skipped (push the dataset the drafts were made from)")
    if not kept:
        raise ReviewError(f"{drafts_path}: no draft to push"
                          + (f" ({problems[0]})" if problems else " (the file is empty)"))
    root = _media_root(conn)
    ls = conn.client()
    ref, created = ensure_project(ls, project, _labels(kept, dataset))
    result = PushResult(project_id=ref.id, project_created=created, problems=problems)
    ensure_storage(ls, ref.id, root / MEDIA_DIR)
    ensure_view(ls, ref.id)
    existing = {} if created else {t["data"].get("clip_id"): t for t in project_tasks(ls, ref.id)
                                   if isinstance(t.get("data"), dict)}

    by_clip: dict[str, list[Draft]] = {}
    for d in kept:
        by_clip.setdefault(d.clip_id, []).append(d)
    for clip_id in _render(by_clip, dataset, root, result, progress, iter_clips):
        del by_clip[clip_id]

    new_tasks, new_preds, updates = [], [], []
    for clip_id, ds in by_clip.items():
        m, task = meta[clip_id], existing.get(clip_id)
        have = {p.get("model_version") for p in (task or {}).get("predictions") or []}
        fresh = [d for d in ds if d.model_version not in have]
        result.unchanged += len(ds) - len(fresh)
        if task is not None and not fresh:
            continue  # nothing to add, so nothing to recompute
        old = ((task or {}).get("data") or {}).get("eai", {}).get("drafts", {})
        summaries = {**old, **{d.model_version: draft_summary(d) for d in fresh}}
        newest = max(ds, key=lambda d: d.created_at)
        data = task_data(clip_id, m.get("dataset"), m.get("action"),
                         local_files_url(media_relpath(clip_id)), m["fps"], newest.evidence,
                         summaries)
        if task is None:
            new_tasks.append({"data": data, "predictions": [draft_prediction(d) for d in ds]})
        else:
            new_preds += [{**draft_prediction(d), "task": task["id"]} for d in fresh]
            if data != task["data"]:
                updates.append((task["id"], data))
    new_tasks.sort(key=lambda t: (-t["data"]["priority"], t["data"]["clip_id"]))
    _import(ls, ref.id, new_tasks, new_preds, updates, result, progress)
    versions = sorted(kept, key=lambda d: d.created_at)
    if result.tasks_created or result.predictions_added:
        # Label Studio pre-fills the editor from the predictions of the project's model version
        ls.projects.update(id=ref.id, model_version=versions[-1].model_version)
    return result


def _render(by_clip: dict[str, list[Draft]], dataset: Path, root: Path, result: PushResult,
            progress: Progress, iter_clips) -> list[str]:
    """Render the clips whose MP4 is not cached yet (one pass over the dataset); returns the
    clips that could not be rendered (reported in result.problems, left out of the push)."""
    todo = [c for c in by_clip if not (root / media_relpath(c)).is_file()]
    result.render_cached = len(by_clip) - len(todo)
    failed: list[str] = []
    if not todo:
        return failed  # reading the dataset would cost seconds for nothing
    progress("render", 0, len(todo))
    for n, clip in enumerate(iter_clips(dataset, clip_ids=todo), 1):
        try:
            ensure_render(clip, root)
            result.rendered += 1
        except ReviewError as e:
            result.problems.append(f"{e}; its drafts were not pushed")
            failed.append(clip.clip_id)
        progress("render", n, len(todo))
    return failed


def _import(ls, project_id: int, new_tasks: list[dict], new_preds: list[dict],
            updates: list[tuple[int, dict]], result: PushResult, progress: Progress) -> None:
    total = len(new_tasks) + len(new_preds) + len(updates)
    done = 0
    progress("import", 0, total)
    for i in range(0, len(new_tasks), BATCH):
        batch = new_tasks[i:i + BATCH]
        r = ls.projects.import_tasks(project_id, request=batch, return_task_ids=True)
        result.tasks_created += int(r.task_count or 0)
        result.predictions_added += int(r.prediction_count or 0)
        done += len(batch)
        progress("import", done, total)
    for i in range(0, len(new_preds), BATCH):
        batch = new_preds[i:i + BATCH]
        ls.projects.import_predictions(project_id, request=batch)
        result.predictions_added += len(batch)
        done += len(batch)
        progress("import", done, total)
    for task_id, data in updates:
        ls.tasks.update(id=str(task_id), data=data)
        result.tasks_updated += 1
        done += 1
        progress("import", done, total)
