"""The multi-granularity skeleton tokenizer (MGST), spatio-temporal level: body-part motion
codes shared by every dataset, as LM tokens `<st_N>`, and the semantic level's descriptor-level
tokens `<sem_NAME_LEVEL>`. See docs/tokenizer.md."""

from eai.toolkit.tokenizer.config import TokenizerConfig
from eai.toolkit.tokenizer.encode import Tokenizer, load_tokenizer
from eai.toolkit.tokenizer.train import TokenizerReport, train_tokenizer

__all__ = ["Tokenizer", "TokenizerConfig", "TokenizerReport", "load_tokenizer", "train_tokenizer"]
