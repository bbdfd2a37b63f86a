"""Generation backends: one interface, two implementations (DESIGN.md, backends and serving).

Both work on token ids rendered by the model directory's own tokenizer, so the two backends see
exactly the same prompt and their greedy answers can be compared token for token:

- `TransformersBackend` (eai.toolkit.drafting.backend_transformers): in-process, batched.
- `OpenAIBackend` (eai.toolkit.drafting.backend_openai): an OpenAI-compatible HTTP server
  (vLLM, started by `eai serve`), concurrent bounded requests with retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class Generation:
    token_ids: list[int]  # the generated ids, the stop token included when one was hit
    finish_reason: str  # "stop" (eos or a stop id) or "length"
    extra: dict = field(default_factory=dict)


class BackendError(RuntimeError):
    pass


class Backend(Protocol):
    name: str  # "transformers" | "openai"

    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int,
                 stop_token_ids: Sequence[int], temperature: float = 0.0,
                 seed: int = 0) -> list[Generation]:
        """Continue each prompt (token ids); greedy when temperature == 0. Stops at the model's
        eos or any of stop_token_ids (included in token_ids), or after max_new_tokens."""
        ...

    def score(self, prompts: Sequence[Sequence[int]],
              options: Sequence[Sequence[int]]) -> np.ndarray:
        """(len(prompts), len(options)) float64: log p(option | prompt), summed over the
        option's tokens (teacher forcing). Used to read the label-set probabilities."""
        ...

    def close(self) -> None:
        ...
