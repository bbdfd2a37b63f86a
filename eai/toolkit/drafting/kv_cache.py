"""A KV cache allocated once per batch, and GQA attention that keeps it un-copied (for
backend_transformers' decoding loop).

Why not transformers' own caches: DynamicCache concatenates every layer's keys and values at
every step (a full copy of the cache per generated token), and StaticCache lets attention read
all of its preallocated columns, empty ones included, and cannot drop the rows of finished
answers. `PaddedBatchCache` holds a batch of padded prompts in buffers sized for prompt +
answer: a step writes one column in place, attention reads a view of the filled columns only,
and a finished answer's row is overwritten by a running one (one row copied, not the cache).

Why a registered attention function: with a padding mask, transformers' "sdpa" attention copies
the keys and values of each KV head to every query head it serves (`repeat_kv`, 3x for
SmolLM2) before calling torch, at every step and layer. torch's CPU kernel takes the mask and
grouped heads together (`enable_gqa`), with the same result bit for bit; on CUDA transformers'
choice is kept (a mask with grouped heads falls back to a slow kernel there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.cache_utils import Cache, CacheLayerMixin
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask
from transformers.utils.import_utils import is_torch_greater_or_equal

GQA_SDPA = "eai_sdpa_gqa"


def _sdpa_gqa_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None,
                        **kwargs):
    """transformers' sdpa attention, except under a mask with grouped KV heads: then torch
    groups the heads itself instead of transformers copying them."""
    grouped = key.shape[1] != query.shape[1]
    if attention_mask is None or not grouped or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      dropout=dropout, scaling=scaling, **kwargs)
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask,
                                         dropout_p=dropout, scale=scaling, enable_gqa=True)
    return out.transpose(1, 2).contiguous(), None


def use_gqa_sdpa(model) -> None:
    """Switch a CPU model from "sdpa" to `_sdpa_gqa_attention` (masks are built as for sdpa)."""
    if (model.config._attn_implementation != "sdpa" or model.device.type != "cpu"
            or not is_torch_greater_or_equal("2.5")):  # enable_gqa came with torch 2.5
        return
    AttentionInterface.register(GQA_SDPA, _sdpa_gqa_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(GQA_SDPA, sdpa_mask)
    model.set_attn_implementation(GQA_SDPA)


class PreallocatedLayer(CacheLayerMixin):
    """One layer's keys and values in buffers (batch, kv heads, capacity, head dim) allocated
    at the first update and filled from the left; `keys` and `values` are views of the rows in
    use and the filled columns."""

    is_sliding = False

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity, self.length, self.rows = capacity, 0, 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        batch, heads, _, _ = key_states.shape
        self.key_buffer = key_states.new_zeros((batch, heads, self.capacity, key_states.shape[3]))
        self.value_buffer = value_states.new_zeros(
            (batch, heads, self.capacity, value_states.shape[3]))
        self.rows, self.is_initialized = batch, True

    def _update_views(self) -> None:
        self.keys = self.key_buffer[:self.rows, :, :self.length]
        self.values = self.value_buffer[:self.rows, :, :self.length]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if end > self.capacity:
            raise RuntimeError(f"KV cache full: {end} tokens > {self.capacity}")
        self.key_buffer[:self.rows, :, self.length:end] = key_states
        self.value_buffer[:self.rows, :, self.length:end] = value_states
        self.length = end
        self._update_views()
        return self.keys, self.values

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length + query_length, 0

    def get_seq_length(self) -> int:
        return self.length

    def get_max_length(self) -> int:
        return self.capacity

    def get_max_cache_shape(self) -> int:
        """The name transformers 5.6-5.18 give get_max_length (and require). -1, as their
        DynamicLayer answers: attention reads the filled columns only, not the capacity."""
        return -1

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep (or repeat) the rows at indices, in new buffers of the same capacity."""
        if self.is_initialized:
            self.key_buffer = self.key_buffer[:self.rows].index_select(0, indices)
            self.value_buffer = self.value_buffer[:self.rows].index_select(0, indices)
            self.rows = len(indices)
            self._update_views()

    def move_rows(self, sources: list[int], targets: list[int], rows: int) -> None:
        """Copy rows `sources` over rows `targets` in place, then use only the first `rows`."""
        if sources:
            src, dst = (torch.tensor(r, device=self.key_buffer.device) for r in (sources, targets))
            self.key_buffer[dst, :, :self.length] = self.key_buffer[src, :, :self.length]
            self.value_buffer[dst, :, :self.length] = self.value_buffer[src, :, :self.length]
        self.rows = rows
        self._update_views()


class PaddedBatchCache(Cache):
    """The KV cache of a batch of padded prompts with room for their answers (capacity tokens
    per row in all), and its 2D padding mask (0 on padding), which grows with it."""

    def __init__(self, num_layers: int, padding_mask: torch.Tensor, capacity: int):
        super().__init__(layers=[PreallocatedLayer(capacity) for _ in range(num_layers)])
        # (batch, capacity): the prompts' mask, then ones for all the tokens still to come
        self.mask_buffer = padding_mask.new_ones((padding_mask.shape[0], capacity))
        self.mask_buffer[:, :padding_mask.shape[1]] = padding_mask

    def attention_mask(self, new_tokens: int) -> torch.Tensor:
        """The padding mask of a forward of new_tokens more tokens (a view, not a copy)."""
        return self.mask_buffer[:, :self.get_seq_length() + new_tokens]

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        super().batch_select_indices(indices)
        self.mask_buffer = self.mask_buffer.index_select(0, indices)

    def copy_first_row(self, rows: int) -> None:
        """After a forward of the prompts' shared first tokens on one row: copy its keys and
        values to all `rows` rows (the mask already covers all rows)."""
        first = torch.zeros(rows, dtype=torch.long, device=self.mask_buffer.device)
        for layer in self.layers:
            layer.batch_select_indices(first)

    def keep_rows(self, keep: list[int]) -> list[int]:
        """Drop the rows not in `keep` (ascending row indices) and return the new row order
        (the old index of each row). Each dropped row among the first len(keep) is overwritten
        by a kept row from beyond them: one row copied per finished answer at most, where
        selecting the kept rows into new buffers would copy the whole cache."""
        rows = len(keep)
        kept = set(keep)
        holes = [r for r in range(rows) if r not in kept]
        movers = [r for r in keep if r >= rows]  # as many as holes
        order = list(range(rows))
        for hole, mover in zip(holes, movers):
            order[hole] = mover
        for layer in self.layers:
            layer.move_rows(movers, holes, rows)
        if movers:
            self.mask_buffer[holes] = self.mask_buffer[movers]
        self.mask_buffer = self.mask_buffer[:rows]
        return order
