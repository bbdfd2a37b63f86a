"""The Draft: one JSONL line per drafted clip (the contract between drafting and review).

Fields (docs/drafting.md):
  draft_version   format version of this line (DRAFT_VERSION)
  clip_id         the dataset's clip id (`<dataset>/<relative path without suffix>`)
  dataset, action the clip's dataset and action (action may be null)
  model_version   the model directory's eai.json model_version that drafted it
  emotion         a label of the model's label set, or null when the answer did not parse
  confidence      in [0, 1]: the probability of `emotion` among the label set (null with it)
  label_source    "model" (the LM read the skeleton tokens) or "classifier" (cold start: the
                  skeleton tokenizer's classifier chose the label, the LM wrote the text)
  probabilities   {label: probability} over the label set, from the same source
  classifier      {"emotion", "confidence"} of the tokenizer's classifier when it has one (lets
                  review put classifier/LLM disagreements first), else null
  explanation     the drafted text (2-5 sentences), "" when the answer had none
  raw_text        the model's answer as generated (special tokens kept)
  evidence        {descriptor: {"value", "unit", "level"}}: every descriptor the clip has, as
                  the model was given it (level: low / typical / high relative to the
                  tokenizer's reference population, or null)
  faithfulness    {"faithful": bool, "checked": int, "claims": [...], "contradictions": [...]}
  warnings        list of strings (unparsable answer, truncated text, ...)
  prompt_template the prompt template id used
  backend         "transformers" or "openai"
  created_at      UTC ISO 8601
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

DRAFT_VERSION = 1


@dataclass
class Draft:
    clip_id: str
    model_version: str
    emotion: str | None
    confidence: float | None
    explanation: str
    evidence: dict[str, dict[str, Any]]
    prompt_template: str
    label_source: str = "model"
    probabilities: dict[str, float] = field(default_factory=dict)
    classifier: dict[str, Any] | None = None
    raw_text: str = ""
    faithfulness: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    dataset: str | None = None
    action: str | None = None
    backend: str = "transformers"
    created_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                  time.gmtime()))
    draft_version: int = DRAFT_VERSION

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        head = ["draft_version", "clip_id", "dataset", "action", "model_version", "emotion",
                "confidence", "label_source"]
        return {**{k: d.pop(k) for k in head}, **d}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Draft:
        known = {f.name for f in fields(cls)}
        missing = [k for k in ("clip_id", "model_version", "emotion", "confidence",
                               "explanation", "evidence", "prompt_template") if k not in d]
        if missing:
            raise ValueError(f"not a draft line: it lacks {', '.join(missing)}")
        return cls(**{k: v for k, v in d.items() if k in known})


class DraftFileError(ValueError):
    pass


def read_drafts(path: str | Path, *, skip_broken_last: bool = True) -> Iterator[Draft]:
    """Drafts of a JSONL file. A broken line raises DraftFileError naming the file and line,
    except a broken *last* line (a write cut off by a crash), which is skipped when
    skip_broken_last (drafting rewrites it on the next run)."""
    path = Path(path)
    with path.open(encoding="utf-8") as f:
        lines = f.readlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield Draft.from_dict(json.loads(line))
        except (json.JSONDecodeError, ValueError, TypeError) as e:
            if skip_broken_last and n == len(lines) and not line.endswith("\n"):
                return
            raise DraftFileError(f"{path}, line {n}: {e}; fix or delete that line") from None
