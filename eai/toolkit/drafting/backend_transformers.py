"""The in-process backend: an EAI-LLM directory loaded with transformers, batched.

Why a hand-written decoding loop rather than `model.generate`: it lets each sequence stop at its
own stop id and leave the batch (its KV-cache rows are dropped, so long answers do not make short
ones pay), and it gives each prompt its own seeded random stream, so a sampled answer does not
depend on which other prompts shared its batch.

Batches are left-padded with an attention mask; position ids count only real tokens, so a padded
prompt is computed as if it were alone (greedy answers equal one-at-a-time answers up to float
rounding). Prompts are sorted by length before batching to keep padding small. `score` runs each
prompt once and then all its options in one forward over a copy of the prompt's KV cache.

float32 by default on CPU (faster than bfloat16 there and what `eai serve` uses, so the two
backends agree); the torch thread count is left as the caller set it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eai.toolkit.drafting.backends import BackendError, Generation


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


class TransformersBackend:
    """`Backend` over a model directory, in this process (eai.toolkit.drafting.backends)."""

    name = "transformers"

    def __init__(self, model_dir: str | Path, device: str | None = None, dtype: Any = None,
                 batch_size: int = 8):
        import torch

        from eai.toolkit.model import load_model

        if batch_size < 1:
            raise BackendError(f"batch_size {batch_size}: must be at least 1")
        self.device = device or "cpu"
        self.model, self.tokenizer, self.info = load_model(
            model_dir, dtype=_dtype(dtype, self.device), device=self.device)
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

    def _prefill(self, batch: list[list[int]]):
        """Forward left-padded prompts: (last log-probs (B, V), cache, mask, next positions)."""
        torch = self._torch
        n = max(len(p) for p in batch)
        ids = torch.full((len(batch), n), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), n), dtype=torch.long)
        for r, p in enumerate(batch):
            ids[r, n - len(p):] = torch.tensor(p)
            mask[r, n - len(p):] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        ids, mask, pos = (t.to(self.device) for t in (ids, mask, pos))
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
        logp = out.logits[:, -1, :].float().log_softmax(-1)
        return logp, out.past_key_values, mask, pos[:, -1] + 1

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
        logp, cache, mask, pos = self._prefill(batch)
        tokens: list[list[int]] = [[] for _ in batch]
        reasons: list[str] = ["length"] * len(batch)
        active = list(range(len(batch)))  # rows of the batch still generating
        for step in range(max_new):
            if temperature > 0:
                probs = (logp / temperature).softmax(-1)
                nxt = [int(torch.multinomial(probs[k], 1, generator=gens[r]))
                       for k, r in enumerate(active)]
            else:
                nxt = logp.argmax(-1).tolist()
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
                sel = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(sel)
                mask, pos = mask[sel], pos[sel]
                active = [active[k] for k in keep]
                nxt = [nxt[k] for k in keep]
            ids = torch.tensor(nxt, device=self.device).unsqueeze(1)
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos.unsqueeze(1),
                             past_key_values=cache, use_cache=True)
            cache, pos = out.past_key_values, pos + 1
            logp = out.logits[:, -1, :].float().log_softmax(-1)
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
        logp, cache, mask, pos = self._prefill(batch)
        n_opt, width = len(opts), max(len(o) for o in opts)
        scores = np.zeros((len(batch), n_opt), dtype=np.float64)
        first = torch.tensor([o[0] for o in opts], device=self.device)
        scores[:] = logp[:, first].double().cpu().numpy()
        if width == 1:
            return scores
        rows = torch.arange(len(batch), device=self.device).repeat_interleave(n_opt)
        ids = torch.full((n_opt, width), self.pad_id, dtype=torch.long)
        for j, o in enumerate(opts):
            ids[j, :len(o)] = torch.tensor(o)
        ids = ids.to(self.device).repeat(len(batch), 1)
        sub = copy.deepcopy(cache)  # the option tokens are appended to this copy only
        sub.batch_select_indices(rows)
        # Option padding sits after the real tokens, so causal attention keeps it out of them.
        full_mask = torch.cat([mask[rows], mask.new_ones((len(rows), width))], dim=1)
        positions = pos[rows].unsqueeze(1) + torch.arange(width, device=self.device)
        logits = self.model(input_ids=ids, attention_mask=full_mask, position_ids=positions,
                            past_key_values=sub, use_cache=True).logits
        lp = logits[:, :-1, :].float().log_softmax(-1)  # position k predicts option token k+1
        nxt = lp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1).double().cpu().numpy()
        for r in range(len(rows)):
            b, j = divmod(r, n_opt)
            scores[b, j] += nxt[r, :len(opts[j]) - 1].sum()
        return scores

    def close(self) -> None:
        """Drop the model so its memory can be freed."""
        self.model = None
