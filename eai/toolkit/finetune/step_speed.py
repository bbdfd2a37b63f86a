"""What makes a LoRA training step fast on a CPU, each measured (BENCHMARKS.md section 6).

A profile of the first version's CPU step (SmolLM2-135M, batch 8 x 256, bf16 autocast over
float32 weights, ~7 s) showed the matrix products taking under a third of it; the rest was
dtype casts, small element-wise kernels and the flash-attention backward. What fixed it:

1. `compile_layers`: every decoder layer through `torch.compile` (inductor fuses RMSNorm,
   rotary, SiLU x up and the residual adds into a few C++ loops). One layer's graph serves all
   30 (same code, parameters as inputs), so the first step pays 30-50 s of compiling, not the
   ~6 minutes of compiling the whole model. `dynamic=True`: batches of other lengths reuse the
   graphs. About 1.6x on its own (4.8 -> 2.95 s in one run, attention through SDPA).
2. `LENGTH_AWARE` (with compiled layers): attention as two matrix products for up to
   SHORT_ATTENTION query positions, SDPA above. The CPU flash-attention backward costs ~7x its
   forward; at 256 tokens plain products made the compiled step 2.95 -> 2.35 s, but they keep
   (batch x heads x length^2) scores for the backward, so long examples go back to SDPA (at
   4 x 1,024 tokens SDPA was 2x faster with half the memory).
3. `prepare_base`: the frozen base weights held in bfloat16 when training runs under bf16
   autocast: no per-step float32 -> bf16 copy of every weight, half the weight memory. The
   trained parameters (LoRA matrices, added-token rows) stay float32, and the merge at the end
   starts again from the float32 parent (run.merge_in_float32).
4. `skip_lora_input_casts`: peft casts each LoRA input to its adapter's dtype (float32), which
   autocast then casts back to bf16: two copies of every activation of every linear layer.
   (3 and 4 together, uncompiled: 6.0 -> 4.8 s per step, 4.7 -> 3.7 GB.)
"""

from __future__ import annotations

import shutil
from typing import Any

LENGTH_AWARE = "eai_length_aware"
# Query positions up to which attention runs as plain matrix products (crossover measured at
# batch 4: 512 tokens 2.6 s vs SDPA 3.0 s per step; 1,024 tokens 11.1 s vs 5.7 s)
SHORT_ATTENTION = 512
COMPILE_MIN_STEPS = 20


def can_compile() -> bool:
    """torch.compile's CPU backend builds C++: it needs a compiler on PATH."""
    return any(shutil.which(c) for c in ("g++", "c++", "clang++"))


def use_compile(cfg, steps: int) -> bool:
    """cfg.compile, or by default: on CPU, for a run of at least COMPILE_MIN_STEPS optimiser
    steps (compiling costs 30-50 s, ~10 s once torch's compile cache is warm, and saves 1-2 s
    per SmolLM2 step; on a short run it would cost more than it saves), with a C++ compiler
    present and gradient checkpointing off (the two together were not tried). On GPUs the
    default is off: not measured yet."""
    import torch

    if cfg.compile is not None:
        return cfg.compile
    return (steps >= COMPILE_MIN_STEPS and not torch.cuda.is_available() and can_compile()
            and not cfg.gradient_checkpointing)


def length_aware_attention(module, query, key, value, attention_mask, scaling: float,
                           dropout: float = 0.0, **kwargs: Any):
    """transformers attention interface: (batch, heads, q, d) in, (batch, q, heads, d) out.
    `attention_mask` is additive (0 / -inf), from transformers' eager mask."""
    import torch

    if query.shape[2] > SHORT_ATTENTION:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      scaling=scaling, dropout=dropout, **kwargs)
    # grouped-query attention without copying each KV head to its query heads: the heads that
    # share a KV head become one longer row block (head h reads KV head h // groups)
    b, heads, q, d = query.shape
    kv_heads, kv = key.shape[1], key.shape[2]
    groups = heads // kv_heads
    scores = torch.matmul(query.reshape(b, kv_heads, groups * q, d), key.transpose(2, 3))
    scores = scores.view(b, kv_heads, groups, q, kv) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask[:, :, None, :, :kv]
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    if dropout and module.training:
        probs = torch.nn.functional.dropout(probs, p=dropout)
    out = torch.matmul(probs.view(b, kv_heads, groups * q, kv), value)
    return out.view(b, heads, q, d).transpose(1, 2).contiguous(), None


def register_length_aware_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(LENGTH_AWARE, length_aware_attention)
    AttentionMaskInterface.register(LENGTH_AWARE, eager_mask)


def prepare_base(model, bf16: bool, compiled: bool):
    """Before LoRA is added: base weights in bf16 when training is; attention by length when
    the layers will be compiled (uncompiled, the matrix-product path was only ~10% faster than
    SDPA at 8 x 256 tokens and took 1.4x the memory, so it keeps SDPA)."""
    import torch

    if compiled:
        register_length_aware_attention()
        model.set_attn_implementation(LENGTH_AWARE)
    return model.to(torch.bfloat16) if bf16 else model


def skip_lora_input_casts(peft_model) -> None:
    for m in peft_model.modules():
        if hasattr(m, "cast_input_dtype_enabled"):
            m.cast_input_dtype_enabled = False


def training_model(model, new_token_ids: list[int], cfg, bf16: bool, compiled: bool):
    """The float32 model as `eai finetune` trains it: weights in bf16 when training is, LoRA
    (train.lora_model), no LoRA input casts, and the decoder layers compiled when asked.
    Returns (peft model, whether layers were compiled)."""
    from eai.toolkit.finetune.train import lora_model

    peft_model = lora_model(prepare_base(model, bf16, compiled), new_token_ids, cfg)
    skip_lora_input_casts(peft_model)
    return peft_model, compiled and compile_layers(peft_model) > 0


def compile_layers(peft_model) -> int:
    """Compile each decoder layer in place (state-dict keys stay as they are, so checkpoints
    and the adapter files are unchanged); returns how many were compiled: 0 for a model that
    does not keep its decoder layers in `.model.layers` (Llama-style, as SmolLM2), left as is."""
    layers = getattr(getattr(peft_model.get_base_model(), "model", None), "layers", None)
    if layers is None:
        return 0
    for layer in layers:
        layer.compile(dynamic=True)
    return len(layers)
