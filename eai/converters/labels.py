"""Label sources and label maps: from a file to (emotion, label_raw, subject, action).

Where labels come from, strongest first: a table (`--labels FILE`, CSV/TSV joined on file name,
file stem, relative path or clip id), a sidecar JSON (`emotion` / `label`, `subject`,
`action`), a user pattern (`--label-pattern REGEX` with named groups `label` or `emotion`,
`subject`, `action`), then the built-in file-name patterns of the bundled datasets.

A label map turns raw labels into canonical emotion names. Raw labels outside the map keep
`label_raw` and get no `emotion` (Bandai-Namco's character styles such as `chimpira`, say).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

# Common emotion words -> canonical names; used when no dataset-specific map applies.
GENERIC_LABEL_MAP: dict[str, str] = {
    "neutral": "neutral", "normal": "neutral", "none": "neutral",
    "happy": "happy", "happiness": "happy", "joy": "happy", "joyful": "happy",
    "sad": "sad", "sadness": "sad",
    "angry": "angry", "anger": "angry",
    "fear": "fearful", "fearful": "fearful", "afraid": "fearful", "scared": "fearful",
    "surprise": "surprised", "surprised": "surprised",
    "disgust": "disgusted", "disgusted": "disgusted",
    "proud": "proud", "pride": "proud",
    "shame": "ashamed", "ashamed": "ashamed",
    "relief": "relieved", "relieved": "relieved",
    "tired": "tired", "content": "content", "excited": "excited",
}

# Bandai-Namco-1 styles: seven emotion-like styles; character styles stay unmapped.
BANDAI_LABEL_MAP: dict[str, str] = {
    "normal": "neutral", "happy": "happy", "sad": "sad", "angry": "angry", "proud": "proud",
    "not-confident": "not-confident", "tired": "tired",
}

EMOTION_GAIT_LABEL_MAP: dict[str, str] = {
    "angry": "angry", "happy": "happy", "sad": "sad", "neutral": "neutral",
}


@dataclass(frozen=True)
class NamePattern:
    name: str
    regex: re.Pattern
    label_map: dict[str, str]
    dataset: str | None = None  # the dataset name these files usually belong to


BUILTIN_PATTERNS = (
    NamePattern("bandai-namco",
                re.compile(r"^dataset-(?P<part>\d+)_(?P<action>[a-z-]+)_(?P<label>[a-z-]+)_"
                           r"(?P<take>\d+)$", re.IGNORECASE),
                BANDAI_LABEL_MAP),
    NamePattern("emotion-gait",
                re.compile(r"(?:^|_)(?P<subject>\d+)_(?P<label>angry|happy|sad|neutral)$",
                           re.IGNORECASE),
                EMOTION_GAIT_LABEL_MAP),
    NamePattern("eai-sample",
                re.compile(r"^sample_(?P<label>[a-z-]+)_(?P<action>[a-z-]+)_"
                           r"(?P<subject>[a-z0-9-]+)_(?P<take>\d+)$", re.IGNORECASE),
                GENERIC_LABEL_MAP),
)


class LabelError(ValueError):
    pass


@dataclass
class Labels:
    emotion: str | None = None
    label_raw: str | None = None
    subject: str | None = None
    action: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    label_source: str | None = None  # "table", "sidecar", "pattern", "bandai-namco", ...
    label_map: str | None = None


def load_label_map(path: str | Path) -> dict[str, str]:
    """A JSON object {raw: emotion} or a two-column CSV/TSV (raw, emotion) with a header."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        data = json.loads(text)
        if not isinstance(data, dict):
            raise LabelError(f"{path}: a label map must be a JSON object {{raw: emotion}}")
        return {str(k).strip().lower(): str(v).strip() for k, v in data.items()}
    rows = list(csv.reader(text.splitlines(), delimiter="\t" if "\t" in text else ","))
    out = {}
    for i, row in enumerate(rows[1:], start=2):
        if len(row) < 2:
            raise LabelError(f"{path}:line {i}: expected 'raw,emotion', found {row!r}")
        out[row[0].strip().lower()] = row[1].strip()
    return out


class LabelTable:
    """`--labels FILE`: rows keyed by file name, stem, relative path or clip id."""

    KEY_COLUMNS = ("clip_id", "file", "filename", "path", "name")

    def __init__(self, path: str | Path):
        path = Path(path)
        text = path.read_text(encoding="utf-8-sig")
        delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") or "\t" in text.split(
            "\n", 1)[0] else ","
        reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
        fields = [f.strip().lower() for f in (reader.fieldnames or [])]
        key_col = next((c for c in self.KEY_COLUMNS if c in fields), None)
        if key_col is None:
            raise LabelError(f"{path}: line 1: no key column; expected one of "
                             f"{', '.join(self.KEY_COLUMNS)} (found {', '.join(fields)})")
        self.rows: dict[str, dict[str, str]] = {}
        for row in reader:
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            key = row.get(key_col, "")
            if key:
                self.rows[key] = row
                self.rows.setdefault(Path(key).stem, row)

    def lookup(self, clip_id: str, rel_path: str) -> dict[str, str] | None:
        p = Path(rel_path)
        for key in (clip_id, rel_path, p.name, p.stem, clip_id.split("/", 1)[-1]):
            if key in self.rows:
                return self.rows[key]
        return None


@dataclass
class LabelConfig:
    table: LabelTable | None = None
    pattern: re.Pattern | None = None
    label_map: dict[str, str] | None = None  # --label-map, overrides the built-in maps


def _from_fields(fields: dict, source: str) -> Labels | None:
    label = fields.get("emotion") or fields.get("label") or fields.get("style")
    if not isinstance(label, str) or not label.strip():
        label = None
    subject, action = fields.get("subject"), fields.get("action") or fields.get("content")
    if label is None and not isinstance(subject, str) and not isinstance(action, str):
        return None
    extra = {k: str(v) for k, v in fields.items()
             if k not in ("emotion", "label", "style", "subject", "action", "content", "file",
                          "filename", "path", "clip_id", "name", "layout", "fps", "units")
             and isinstance(v, (str, int, float))}
    return Labels(label_raw=label.strip() if label else None,
                  subject=str(subject) if isinstance(subject, (str, int)) else None,
                  action=str(action) if isinstance(action, str) else None,
                  extra=extra, label_source=source)


def resolve_labels(path: Path, rel_path: str, clip_id: str, sidecar: dict,
                   config: LabelConfig) -> Labels:
    stem = path.stem
    labels: Labels | None = None
    builtin_map: dict[str, str] | None = None
    if config.table is not None:
        row = config.table.lookup(clip_id, rel_path)
        if row is not None:
            labels = _from_fields(row, "table")
    if labels is None and sidecar:
        labels = _from_fields(sidecar, "sidecar")
    if labels is None and config.pattern is not None:
        m = config.pattern.search(stem)
        if m:
            labels = _from_fields({k: v for k, v in m.groupdict().items() if v}, "pattern")
    for pattern in BUILTIN_PATTERNS:
        m = pattern.regex.search(stem)
        if m:
            builtin_map = pattern.label_map
            if labels is None:
                labels = _from_fields({k: v for k, v in m.groupdict().items() if v},
                                      pattern.name)
            break
    labels = labels or Labels()
    if labels.label_raw:
        if config.label_map is not None:
            table, map_name = config.label_map, "user"
        elif builtin_map is not None:
            table = builtin_map
            map_name = next(p.name for p in BUILTIN_PATTERNS if p.label_map is builtin_map)
        else:
            table, map_name = GENERIC_LABEL_MAP, "generic"
        labels.emotion = table.get(labels.label_raw.strip().lower())
        labels.label_map = map_name
    return labels


def label_maps_in_use() -> dict[str, dict[str, str]]:
    """The built-in maps by name, recorded in the manifest for provenance."""
    maps = {p.name: p.label_map for p in BUILTIN_PATTERNS}
    maps["generic"] = GENERIC_LABEL_MAP
    return maps
