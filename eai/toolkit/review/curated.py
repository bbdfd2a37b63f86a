"""The CuratedPair: one JSONL line per reviewed annotation (docs/review.md, field by field).

A pair is what a reviewer made of one draft: the final emotion and explanation, how they got
there (outcome), the draft they started from, and where it lives in Label Studio. Finetuning
reads these lines: only outcomes in TRAINABLE become training targets; rejected pairs are kept
(they say which drafts were bad) but never learned from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

CURATED_VERSION = 1
OUTCOMES = ("accepted", "edited", "relabelled", "rejected")
TRAINABLE = ("accepted", "edited", "relabelled")
REJECT_REASONS = ("skipped", "marked_reject", "contradiction_not_fixed", "no_emotion",
                  "empty_explanation")


@dataclass
class CuratedPair:
    clip_id: str
    emotion: str | None  # the reviewer's emotion (None only when rejected)
    explanation: str  # the reviewer's final text ("" only when rejected)
    outcome: str  # one of OUTCOMES
    draft: dict[str, Any] | None  # {model_version, emotion, explanation, confidence,
    #                               prediction_id, matched_by}: what the reviewer started from
    reviewer: str | None  # the annotator's e-mail (or user id when unknown)
    rating: int | None  # the quality rating of the draft, 1-5, None if not given
    contradiction: bool  # the reviewer flagged "the drafted explanation contradicts the motion"
    lead_time_s: float | None  # seconds the reviewer spent (Label Studio's lead time)
    label_studio: dict[str, Any]  # {url, project, project_id, task_id, annotation_id}
    updated_at: str  # the annotation's last change (UTC ISO 8601)
    created_at: str | None = None
    text_edited: bool = False  # the final text differs from the draft's (whitespace aside)
    rejected_because: str | None = None  # one of REJECT_REASONS when outcome is rejected
    dataset: str | None = None
    action: str | None = None
    curated_version: int = CURATED_VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # room for later fields

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {self.outcome!r}")
        if (self.outcome == "rejected") != (self.rejected_because is not None):
            raise ValueError("rejected_because is set exactly when the outcome is rejected")

    @property
    def annotation_id(self) -> int:
        return int(self.label_studio["annotation_id"])

    @property
    def trainable(self) -> bool:
        return self.outcome in TRAINABLE

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        head = ["curated_version", "clip_id", "outcome", "emotion", "explanation"]
        return {**{k: d.pop(k) for k in head}, **d}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CuratedPair:
        version = d.get("curated_version")
        if version != CURATED_VERSION:
            raise ValueError(f"curated_version {version!r} is not supported (this eai reads "
                             f"{CURATED_VERSION}); upgrade eai")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def read_curated(path: str | Path) -> list[CuratedPair]:
    """All pairs of a curated JSONL file; a bad line raises ValueError naming file and line."""
    path = Path(path)
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(CuratedPair.from_dict(json.loads(line)))
        except (json.JSONDecodeError, ValueError, TypeError, KeyError) as e:
            raise ValueError(f"{path}, line {n}: not a curated pair ({e})") from None
    return out
