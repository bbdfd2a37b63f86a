"""The in-process backend: an EAI-LLM directory loaded with transformers, batched.

Why a hand-written decoding loop rather than `model.generate`: it lets each sequence stop at its
own stop id and leave the batch (its KV-cache rows are dropped, so long answers do not make short
ones pay), and it gives each prompt its own seeded random stream, so a sampled answer does not
depend on which other prompts shared its batch.

Batches are padded with an attention mask (between the tokens all prompts of the batch start
with and each prompt's rest); position ids count only real tokens, so a padded prompt is
computed as if it were alone (greedy answers equal one-at-a-time answers up to float rounding).
Prompts are sorted by length before batching to keep padding small. `score` runs each prompt
once and then all its options in one forward over copies of the prompt's KV cache.

Speed (docs/drafting.md, Speed): the KV cache is allocated once per batch for prompt + answer
and written in place, a finished answer's rows are overwritten by a running one's
(eai.toolkit.drafting.kv_cache.PaddedBatchCache); attention on CPU reads SmolLM2's 3 KV heads
without copying them to its 9 query heads; the batch's shared start (the system prompt) is
computed once; and only the last position's logits are computed after a prompt.

float32 by default on CPU (faster than bfloat16 there and what `eai serve` uses, so the two
backends agree); the torch thread count is left as the caller set it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eai.toolkit.drafting.backends import BackendError, Generation
from eai.toolkit.drafting.kv_cache import PaddedBatchCache, use_gqa_sdpa


def _dtype(dtype: Any, device: str):
    import torch

    if dtype is None:
        return torch.float32 if device == "cpu" else "auto"
    if isinstance(dtype, str) and dtype != "auto":
        value = getattr(torch, dtype.removeprefix("torch."), None)
        if not isinstance(value, torch.dtype):
            raise BackendError(f"dtype {dtype!r}: use auto, float32, bfloat16 or float16")
        return value
    return dtype


def _shared_prefix_length(prompts: list[list[int]]) -> int:
    """How many first tokens all prompts have in common, leaving each at least one of its own."""
    shared = 0
    for column in zip(*prompts):
        if len(set(column)) > 1:
            break
        shared += 1
    return min(shared, min(len(p) for p in prompts) - 1)


class TransformersBackend:
    """`Backend` over a model directory, in this process (eai.toolkit.drafting.backends)."""

    name = "transformers"
    min_shared_prefix = 16  # tokens; a shorter shared start is not worth a forward of its own

    def __init__(self, model_dir: str | Path, device: str | None = None, dtype: Any = None,
                 batch_size: int = 32):
        import torch

        from eai.toolkit.model import load_model

        if batch_size < 1:
            raise BackendError(f"batch_size {batch_size}: must be at least 1")
        self.device = device or "cpu"
        self.model, self.tokenizer, self.info = load_model(
            model_dir, dtype=_dtype(dtype, self.device), device=self.device)
        use_gqa_sdpa(self.model)
        self.batch_size = batch_size
        self.eos_ids = self._eos_ids()
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.eos_ids or {0})
        self.max_len = getattr(self.model.config, "max_position_embeddings", None)
        self._torch = torch

    def _eos_ids(self) -> set[int]:
        """The model's own end tokens: the tokenizer's eos and generation_config's (vLLM stops
        at both too)."""
        ids: set[int] = set()
        gen = getattr(self.model, "generation_config", None)
        for value in (self.tokenizer.eos_token_id, getattr(gen, "eos_token_id", None)):
            if isinstance(value, int):
                ids.add(value)
            elif value:
                ids.update(int(v) for v in value)
        return ids

    # -- helpers ----------------------------------------------------------------------------
    def _check(self, prompts: Sequence[Sequence[int]], extra: int) -> list[list[int]]:
        out = [[int(t) for t in p] for p in prompts]
        rows = self.model.get_input_embeddings().weight.shape[0]
        for i, p in enumerate(out):
            if not p:
                raise BackendError(f"prompt {i} is empty")
            if min(p) < 0 or max(p) >= rows:
                raise BackendError(f"prompt {i}: token id out of range [0, {rows})")
            if self.max_len and len(p) + extra > self.max_len:
                raise BackendError(f"prompt {i}: {len(p)} tokens + {extra} would exceed the "
                                   f"model's {self.max_len} positions; shorten the prompt")
        return out

    def _padded_inputs(self, batch: list[list[int]]):
        """(ids, mask, positions, shared) of a batch, (B, n) each. A row holds the `shared`
        tokens all prompts start with (a system prompt, say), then its prompt's rest
        right-aligned, padding between the two; positions count real tokens only, so each
        prompt is computed as if it were alone."""
        torch = self._torch
        shared = _shared_prefix_length(batch)
        n = max(len(p) for p in batch)
        ids = torch.full((len(batch), n), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), n), dtype=torch.long)
        for r, p in enumerate(batch):
            rest = n - (len(p) - shared)  # where the prompt's own tokens start
            ids[r, :shared], ids[r, rest:] = torch.tensor(p[:shared]), torch.tensor(p[shared:])
            mask[r, :shared], mask[r, rest:] = 1, 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        return (*(t.to(self.device) for t in (ids, mask, pos)), shared)

    def _prefill(self, batch: list[list[int]], room: int):
        """Forward the prompts into a cache with room for `room` more tokens per row:
        (last logits (B, V) float32, cache, next positions (B,))."""
        ids, mask, pos, shared = self._padded_inputs(batch)
        cache = PaddedBatchCache(self.model.config.num_hidden_layers, mask, ids.shape[1] + room)
        start = 0
        if len(batch) > 1 and shared >= self.min_shared_prefix:
            # the shared start once, on one row, then copied to the others
            self.model(input_ids=ids[:1, :shared], position_ids=pos[:1, :shared],
                       past_key_values=cache, use_cache=True, logits_to_keep=1)
            cache.copy_first_row(len(batch))
            start = shared
        # logits_to_keep=1: the other positions' logits (B x n x vocab) would be thrown away
        out = self.model(input_ids=ids[:, start:], attention_mask=mask,
                         position_ids=pos[:, start:], past_key_values=cache, use_cache=True,
                         logits_to_keep=1)
        return out.logits[:, -1, :].float(), cache, pos[:, -1] + 1

    def _decode_step(self, cache: PaddedBatchCache, next_ids: list[int], pos):
        """Forward one token per row at positions pos: the next logits (B, V) float32."""
        ids = self._torch.tensor(next_ids, device=self.device).unsqueeze(1)
        out = self.model(input_ids=ids, attention_mask=cache.attention_mask(1),
                         position_ids=pos.unsqueeze(1), past_key_values=cache, use_cache=True)
        return out.logits[:, -1, :].float()

    def _batches(self, prompts: list[list[int]]):
        """Indices of prompts in batches of similar length (longest first)."""
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        for s in range(0, len(order), self.batch_size):
            yield order[s:s + self.batch_size]

    # -- Backend ----------------------------------------------------------------------------
    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int,
                 stop_token_ids: Sequence[int], temperature: float = 0.0,
                 seed: int = 0) -> list[Generation]:
        """Prompt i samples from its own generator seeded with seed + i (OpenAIBackend sends
        the same per-request seeds)."""
        if max_new_tokens < 1:
            raise BackendError(f"max_new_tokens {max_new_tokens}: must be at least 1")
        if temperature < 0:
            raise BackendError(f"temperature {temperature}: must be >= 0")
        ps = self._check(prompts, max_new_tokens)
        stops = self.eos_ids | {int(t) for t in stop_token_ids}
        results: list[Generation | None] = [None] * len(ps)
        with self._torch.inference_mode():
            for idx in self._batches(ps):
                outs = self._generate_batch([ps[i] for i in idx], idx, max_new_tokens, stops,
                                            temperature, seed)
                for i, g in zip(idx, outs):
                    results[i] = g
        return results  # type: ignore[return-value]

    def _generate_batch(self, batch, idx, max_new, stops, temperature, seed):
        torch = self._torch
        gens = None
        if temperature > 0:
            gens = [torch.Generator(device=self.device).manual_seed(seed + i) for i in idx]
        logits, cache, pos = self._prefill(batch, room=max_new)
        tokens: list[list[int]] = [[] for _ in batch]
        reasons: list[str] = ["length"] * len(batch)
        active = list(range(len(batch)))  # rows of the batch still generating
        for step in range(max_new):
            if temperature > 0:
                probs = (logits.log_softmax(-1) / temperature).softmax(-1)
                nxt = [int(torch.multinomial(probs[k], 1, generator=gens[r]))
                       for k, r in enumerate(active)]
            else:  # the argmax of the logits, as model.generate takes it
                nxt = logits.argmax(-1).tolist()
            keep = []
            for k, (r, t) in enumerate(zip(active, nxt)):
                tokens[r].append(t)
                if t in stops:
                    reasons[r] = "stop"
                else:
                    keep.append(k)
            if not keep or step == max_new - 1:
                break
            if len(keep) < len(active):  # drop finished rows from the cache and the batch
                order = cache.keep_rows(keep)
                pos = pos[torch.tensor(order, device=self.device)]
                active = [active[k] for k in order]
                nxt = [nxt[k] for k in order]
            logits = self._decode_step(cache, nxt, pos)
            pos = pos + 1
        return [Generation(token_ids=t, finish_reason=r, extra={"prompt_tokens": len(p)})
                for t, r, p in zip(tokens, reasons, batch)]

    def score(self, prompts: Sequence[Sequence[int]],
              options: Sequence[Sequence[int]]) -> np.ndarray:
        """Per batch of prompts: one prompt forward, then (prompt, option) rows over copies of
        the prompt cache, at most max(batch_size, len(options)) rows per forward."""
        torch = self._torch
        opts = [[int(t) for t in o] for o in options]
        if not opts or any(not o for o in opts):
            raise BackendError("score needs at least one option and no empty option")
        ps = self._check(prompts, max(len(o) for o in opts))
        out = np.zeros((len(ps), len(opts)), dtype=np.float64)
        rows_per_forward = max(self.batch_size, len(opts))
        per_group = max(1, rows_per_forward // len(opts))
        with torch.inference_mode():
            order = sorted(range(len(ps)), key=lambda i: -len(ps[i]))
            for s in range(0, len(order), per_group):
                idx = order[s:s + per_group]
                out[idx] = self._score_group([ps[i] for i in idx], opts)
        return out

    def _score_group(self, batch: list[list[int]], opts: list[list[int]]) -> np.ndarray:
        torch = self._torch
        n_opt, width = len(opts), max(len(o) for o in opts)
        logits, cache, pos = self._prefill(batch, room=width)
        scores = np.zeros((len(batch), n_opt), dtype=np.float64)
        first = torch.tensor([o[0] for o in opts], device=self.device)
        scores[:] = logits.log_softmax(-1)[:, first].double().cpu().numpy()
        if width == 1:
            return scores
        rows = torch.arange(len(batch), device=self.device).repeat_interleave(n_opt)
        ids = torch.full((n_opt, width), self.pad_id, dtype=torch.long)
        for j, o in enumerate(opts):
            ids[j, :len(o)] = torch.tensor(o)
        ids = ids.to(self.device).repeat(len(batch), 1)
        cache.batch_select_indices(rows)  # one copy of its prompt's cache per option
        # Option padding sits after the real tokens, so causal attention keeps it out of them.
        positions = pos[rows].unsqueeze(1) + torch.arange(width, device=self.device)
        logits = self.model(input_ids=ids, attention_mask=cache.attention_mask(width),
                            position_ids=positions, past_key_values=cache, use_cache=True).logits
        lp = logits[:, :-1, :].float().log_softmax(-1)  # position k predicts option token k+1
        nxt = lp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1).double().cpu().numpy()
        for r in range(len(rows)):
            b, j = divmod(r, n_opt)
            scores[b, j] += nxt[r, :len(opts[j]) - 1].sum()
        return scores

    def close(self) -> None:
        """Drop the model so its memory can be freed."""
        self.model = None
