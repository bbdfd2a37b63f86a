"""`eai review pull`: completed annotations -> CuratedPair lines, incrementally.

The output holds one line per annotation, ever: a pull converts the annotations that are new or
changed since the last pull (by id and updated_at, remembered in OUTPUT.state.json beside the
output), replaces the lines of changed ones and appends new ones, and rewrites the file
atomically (a crash leaves the old file whole). --all converts every annotation and rebuilds
the file (dropping lines of annotations deleted in Label Studio).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eai.toolkit.review.connection import Connection
from eai.toolkit.review.curated import CuratedPair
from eai.toolkit.review.errors import ReviewError
from eai.toolkit.review.mapping import annotation_to_pair
from eai.toolkit.review.project import project_tasks, require_project, reviewer_names

STATE_FORMAT = 1


@dataclass
class PullResult:
    output: Path
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    lines: int = 0  # lines in the output now
    outcomes: Counter = field(default_factory=Counter)  # of the lines written this time
    warnings: list[str] = field(default_factory=list)


def state_path(output: Path) -> Path:
    return output.with_name(output.name + ".state.json")


def _load_state(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        if d.get("state_format") != STATE_FORMAT or not isinstance(d.get("annotations"), dict):
            raise ValueError("unknown format")
        return d
    except ValueError as e:
        raise ReviewError(f"{path} is not a pull state file ({e}); delete it and pull with "
                          f"--all to rebuild the output") from None


def _existing_lines(output: Path) -> dict[int, str]:
    """annotation id -> line of the current output, in file order."""
    lines: dict[int, str] = {}
    if not output.is_file():
        return lines
    for n, line in enumerate(output.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            lines[int(json.loads(line)["label_studio"]["annotation_id"])] = line
        except (ValueError, KeyError, TypeError):
            raise ReviewError(f"{output}, line {n}: not a curated pair line; fix the line or "
                              f"write to another file") from None
    return lines


def _write_atomic(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, path)


def pull(project: str, output: str | Path, conn: Connection, everything: bool = False
         ) -> PullResult:
    output = Path(output)
    ls = conn.client()
    ref = require_project(ls, project, conn.url)
    spath = state_path(output)
    state = None if everything or not output.exists() else _load_state(spath)
    if state and (state.get("url"), state.get("project_id")) != (conn.url, ref.id):
        raise ReviewError(f"{output} holds pairs of project {state.get('project')!r} at "
                          f"{state.get('url')}, not of {project!r} at {conn.url}; write to "
                          f"another file")
    seen: dict[str, str] = dict(state["annotations"]) if state else {}
    reviewers = reviewer_names(ls)
    result = PullResult(output=output)
    changed: list[CuratedPair] = []
    current: dict[str, str] = {}
    for task in project_tasks(ls, ref.id, only_annotated=True):
        for ann in task.get("annotations") or []:
            pair = annotation_to_pair(task, ann, url=conn.url, project=ref.title,
                                      project_id=ref.id, reviewers=reviewers,
                                      preferred_model_version=ref.model_version)
            if pair.draft is None:
                result.warnings.append(f"task {task.get('id')} has no prediction: annotation "
                                       f"{ann.get('id')} was compared with an empty draft")
            key = str(pair.annotation_id)
            current[key] = pair.updated_at
            if seen.get(key) == pair.updated_at:
                result.unchanged += 1
                continue
            changed.append(pair)
    lines = {} if everything else _existing_lines(output)
    for pair in sorted(changed, key=lambda p: (p.updated_at, p.annotation_id)):
        if pair.annotation_id in lines:
            result.updated += 1
        else:
            result.new += 1
        lines[pair.annotation_id] = pair.to_json()
        result.outcomes[pair.outcome] += 1
    if changed or everything or not output.exists():
        _write_atomic(output, list(lines.values()))
    result.lines = len(lines)
    _write_atomic(spath, [json.dumps({
        "state_format": STATE_FORMAT, "url": conn.url, "project": ref.title,
        "project_id": ref.id, "last_pull": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "annotations": {**seen, **current}}, indent=1)])
    return result
