"""LoRA finetuning step time and peak memory: eai's setup vs full finetuning, same run.

What is measured: optimiser steps of SmolLM2-135M-Instruct (30 layers, hidden 576) with the
skeleton tokens added (671 new rows, as `eai model init` makes it), at batch 8 x 256 tokens,
of which the last 48 are the answer (an emotion and 2-5 sentences; the loss is on the answer,
as in `eai finetune`):

  eai-lora       eai's training step: LoRA r=16 on every linear layer + trainable added-token
                 rows (eai.toolkit.finetune.train.lora_model), left-padded batches and the LM
                 head run on the answer positions only (answer_loss), bfloat16 autocast where
                 the hardware has fast bf16 (use_bf16: AVX512-BF16/AMX CPUs, GPUs) with the
                 frozen weights held in bf16 and, where `eai finetune` compiles by default
                 (CPU runs of 20+ steps), each decoder layer compiled with attention by length
                 (eai.toolkit.finetune.step_speed), AdamW
  eai-lora-uncompiled  the same without torch.compile and with SDPA attention (`--no-compile`,
                 and runs of under 20 steps)
  peft-standard  the textbook peft recipe on the same model: LoRA r=16, dropout 0.05, the same
                 trainable token rows, the model's own loss over full logits (prompt labels
                 -100), AdamW: the peer
  full           full finetuning with the model's own loss (every parameter trained, AdamW)

Each setup: --warmup steps, then the median of --steps timed steps (forward, backward,
optimiser step, zero_grad). The first warm-up step's time is reported apart: for eai-lora it
includes compiling the layers. Peak memory: on CPU the process's peak resident set (ru_maxrss)
read after each setup, and the setups run in fresh subprocesses so one's peak cannot hide the
other's; on a GPU, torch.cuda.max_memory_allocated.

Targets (issue #6, "Performance"): under 2.5 s per step and under 4 GB on this 2-core CPU.

Weights: the cached SmolLM2 checkpoint (`eai model init` makes it: $EAI_HOME/models/...); with
--random-weights (or when the cache is absent, e.g. on a GPU machine), the same architecture
with random weights: step time and memory do not depend on the weights' values.

Usage: python benchmarks/finetune_speed.py [--steps 5] [--warmup 2] [--setups eai-lora,full]
       [--device cpu|cuda] [--random-weights] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

BATCH, LENGTH, ANSWER, ADDED = 8, 256, 48, 671
SMOLLM2_CONFIG = dict(  # SmolLM2-135M-Instruct's architecture (its config.json)
    hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
    num_key_value_heads=3, vocab_size=49152, max_position_embeddings=8192,
    tie_word_embeddings=True, rms_norm_eps=1e-5, rope_theta=100000.0)


def load_model(random_weights: bool, device: str):
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    cached = None
    if not random_weights:
        from eai.toolkit.model.base import cached_base_dir

        d = cached_base_dir()
        cached = d if (d / "config.json").is_file() else None
    if cached is not None:
        model = AutoModelForCausalLM.from_pretrained(cached, dtype=torch.float32)
        source = str(cached)
    else:
        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(**SMOLLM2_CONFIG))
        source = "random weights, SmolLM2-135M architecture"
    model.resize_token_embeddings(model.config.vocab_size + ADDED, mean_resizing=False)
    return model.to(device), source


def one_setup(setup: str, steps: int, warmup: int, device: str, random_weights: bool) -> dict:
    from eai.toolkit.finetune.examples import Example
    from eai.toolkit.finetune.step_speed import COMPILE_MIN_STEPS, training_model, use_compile
    from eai.toolkit.finetune.train import (
        ExampleDataset,
        FinetuneConfig,
        answer_loss,
        lora_model,
        make_collator,
        use_bf16,
    )

    model, source = load_model(random_weights, device)
    n = model.config.vocab_size
    new_ids = list(range(n - ADDED, n))
    eai = setup.startswith("eai-lora")
    if eai:
        # what `eai finetune` does on this device for a long run
        compile_it = setup == "eai-lora" and use_compile(FinetuneConfig(), COMPILE_MIN_STEPS)
        model, _ = training_model(model, new_ids, FinetuneConfig(lora_r=16),
                                  use_bf16(FinetuneConfig()), compile_it)
    elif setup == "peft-standard":
        model = lora_model(model, new_ids, FinetuneConfig(lora_r=16, lora_dropout=0.05))
    model.train()
    collate = make_collator(pad_id=0)
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1e-4, fused=True)  # the Trainer's default optimiser
    g = torch.Generator().manual_seed(0)
    times = []
    # eai trains under bfloat16 autocast where the hardware is fast at it (use_bf16); the
    # peers run as their recipes do (float32 on CPU, bf16 autocast on a GPU)
    bf16 = use_bf16(FinetuneConfig()) if eai else device == "cuda"
    autocast = torch.autocast(device, dtype=torch.bfloat16) if bf16 else None
    def loss_of(batch):
        if eai:
            return answer_loss(model, batch)
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     labels=batch["labels"]).loss

    for step in range(warmup + steps):
        ids = torch.randint(0, n, (BATCH, LENGTH), generator=g).tolist()
        rows = [Example("x", 2, "curated", r[:-ANSWER], r[-ANSWER:]) for r in ids]
        batch = {k: v.to(device) for k, v in
                 collate([ExampleDataset(rows)[i] for i in range(BATCH)]).items()}
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        if autocast:
            with autocast:
                loss = loss_of(batch)
        else:
            loss = loss_of(batch)
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if step == 0:
            first = time.perf_counter() - t
        if step >= warmup:
            times.append(time.perf_counter() - t)
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"setup": setup, "weights": source,
            "trainable_parameters": sum(p.numel() for p in params),
            "step_s_median": statistics.median(times), "step_s_all": times,
            "first_step_s": first,
            "peak_memory_gb": peak / 1e9, "bf16_autocast": bf16,
            "memory_kind": "cuda allocated" if device == "cuda" else "process peak RSS",
            "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--setups", default="eai-lora,eai-lora-uncompiled,peft-standard,full")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--random-weights", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:  # one setup, in its own process (its own peak memory)
        print(json.dumps(one_setup(a.child, a.steps, a.warmup, a.device, a.random_weights)))
        return
    results = []
    for setup in a.setups.split(","):
        cmd = [sys.executable, __file__, "--child", setup, "--steps", str(a.steps), "--warmup",
               str(a.warmup), "--device", a.device] + (["--random-weights"]
                                                        if a.random_weights else [])
        # a fresh compile cache per setup: the first step shows what compiling costs on a
        # machine that has never run it (later runs of eai finetune find the cache warm)
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
            out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                                 env=env).stdout
        r = json.loads(out.strip().splitlines()[-1])
        results.append(r)
        print(f"{setup:19} {r['step_s_median']:.2f} s/step (median of {a.steps}), "
              f"{1 / r['step_s_median']:.2f} steps/s, peak {r['peak_memory_gb']:.2f} GB "
              f"({r['memory_kind']}), {r['trainable_parameters'] / 1e6:.2f} M trainable, "
              f"first step {r['first_step_s']:.1f} s")
    for other in results[1:]:
        ratio = other["step_s_median"] / results[0]["step_s_median"]
        mem = other["peak_memory_gb"] / results[0]["peak_memory_gb"]
        print(f"{results[0]['setup']} vs {other['setup']}: {ratio:.2f}x the speed, "
              f"{1 / mem:.2f}x the peak memory")
    device = torch.cuda.get_device_name() if a.device == "cuda" else platform.processor() or \
        platform.machine()
    doc = {"benchmark": "finetune_speed", "batch": BATCH, "length": LENGTH, "device": device,
           "results": results}
    if a.json:
        a.json.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
