"""Finetuning EAI-LLM: `eai finetune` (docs/finetune.md)."""

from eai.toolkit.finetune.data import FinetuneDataError
from eai.toolkit.finetune.run import run_finetune
from eai.toolkit.finetune.train import FinetuneConfig, FinetuneError

__all__ = ["FinetuneConfig", "FinetuneDataError", "FinetuneError", "run_finetune"]
