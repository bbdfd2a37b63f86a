"""EAI-LLM model directories: a base causal LM with the skeleton tokens added, the skeleton
tokenizer, and eai.json. See docs/model.md.

Importing this package is cheap: transformers is imported only by the functions that load
models.
"""

from eai.toolkit.model.base import DEFAULT_BASE, BaseModelError, eai_home, resolve_base
from eai.toolkit.model.files import ModelDirExistsError, ModelError
from eai.toolkit.model.info import STRUCTURAL_TOKENS, ModelInfo, read_info
from eai.toolkit.model.init import (
    DEFAULT_LABELS,
    DEFAULT_PROMPT_TEMPLATE,
    init_model,
    load_model,
    load_skeleton_tokenizer,
)

__all__ = ["DEFAULT_BASE", "DEFAULT_LABELS", "DEFAULT_PROMPT_TEMPLATE", "STRUCTURAL_TOKENS",
           "BaseModelError", "ModelDirExistsError", "ModelError", "ModelInfo", "eai_home",
           "init_model", "load_model", "load_skeleton_tokenizer", "read_info", "resolve_base"]
