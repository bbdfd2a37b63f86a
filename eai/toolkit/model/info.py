"""`eai.json`: what an EAI-LLM model directory is (version, base, tokenizer, labels, lineage).

See docs/model.md for every field. Later stages (drafting, finetuning, evaluation) read it with
`read_info(model_dir)` and write a new one for each new model version.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from eai.toolkit.model.files import ModelError

INFO_FILE = "eai.json"
SKELETON_DIR = "skeleton_tokenizer"  # the skeleton tokenizer's own files, copied
FORMAT_VERSION = 1
KIND = "eai-llm"

# The answer format's markers, added as whole tokens next to the skeleton tokens. A model
# answers `<emotion>LABEL</emotion><explanation>TEXT</explanation>`: the label comes first, so
# its probability over the label set can be read right after `<emotion>`.
STRUCTURAL_TOKENS: dict[str, str] = {
    "emotion_start": "<emotion>", "emotion_end": "</emotion>",
    "explanation_start": "<explanation>", "explanation_end": "</explanation>",
}


@dataclass
class ModelInfo:
    """The contents of eai.json (docs/model.md)."""

    model_version: str  # "<name>-v<version>-<8 hex of weights + vocabulary>"
    name: str
    version: int  # 0 for `eai model init`; each finetune adds one
    parent_version: str | None  # the model_version this one was made from
    base: dict[str, Any]  # name, source, sha256 (of its weight files), path, ...
    tokenizer: dict[str, Any]  # dir, source, sha256, kind, config, vocabulary_size, ...
    label_set: list[str]
    label_source: str  # "datasets" | "option" | "default"
    prompt_template: str
    structural_tokens: dict[str, str]
    added_tokens: dict[str, Any]  # first_id, last_id, count, preexisting
    vocab_size: int  # len(tokenizer) after adding the tokens
    embedding_rows: int  # rows of the input embedding matrix (>= vocab_size)
    tied_embeddings: bool
    dtype: str
    weights_sha256: str
    created_at: str
    eai_version: str
    transformers_version: str
    training_data: list[dict[str, Any]] = field(default_factory=list)  # finetuning fills these
    metrics: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    kind: str = KIND
    extra: dict[str, Any] = field(default_factory=dict)  # fields a newer eai wrote

    @property
    def new_token_ids(self) -> list[int]:
        """Ids of the tokens eai added (what finetuning trains as new embedding rows)."""
        a = self.added_tokens
        return list(range(a["first_id"], a["last_id"] + 1)) if a.get("count") else []

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        extra = d.pop("extra")
        order = ["format_version", "kind", "model_version", "name", "version", "parent_version"]
        return {**{k: d.pop(k) for k in order}, **d, **extra}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelInfo:
        known = {f.name for f in fields(cls)} - {"extra"}
        missing = [f.name for f in fields(cls) if f.name not in d
                   and f.default is MISSING and f.default_factory is MISSING]
        if missing:
            raise ModelError(f"eai.json lacks {', '.join(missing)}")
        return cls(**{k: v for k, v in d.items() if k in known},
                   extra={k: v for k, v in d.items() if k not in known})


def read_info(model_dir: str | Path) -> ModelInfo:
    from eai.toolkit.dataset import read_versioned_json

    path = Path(model_dir) / INFO_FILE
    try:
        d = read_versioned_json(path, "format_version", FORMAT_VERSION,
                                f"{model_dir}: not an EAI-LLM model directory (no {INFO_FILE}); "
                                f"make one with `eai model init -o {model_dir} --tokenizer "
                                f"TOK_DIR`")
    except (FileNotFoundError, ValueError) as e:
        raise ModelError(str(e)) from None
    try:
        return ModelInfo.from_dict(d)
    except ModelError as e:
        raise ModelError(f"{path}: {e}") from e


def write_info(model_dir: str | Path, info: ModelInfo) -> None:
    from eai.toolkit.dataset import atomic_write_json

    atomic_write_json(Path(model_dir) / INFO_FILE, info.to_dict())
