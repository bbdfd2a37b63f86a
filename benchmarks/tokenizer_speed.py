"""Skeleton tokenizer (MGST, spatio-temporal level) on Bandai-Namco-1: training and encoding.

What is measured:

  train     wall time of `train_tokenizer([bandai], out, TokenizerConfig())` with the DEFAULT
            config (loading the dataset, features, training, held-out evaluation, saving), plus
            the figures it reports: held-out MPJPE (mm), the mean-pose baseline on the same
            clips, root-motion errors, perplexity and used/dead codes on the training clips.
  encode    clips per minute of `Tokenizer.encode_many` on ONE core (torch.set_num_threads(1)),
            from Clip objects in memory to codes (features, normalisation, batching, the
            encoder; reading Parquet is not counted), on ~8 s clips: windows of 200-280 frames
            (uniform, seeded) cut from the Bandai clips that are long enough. The median of
            --repeats passes after one warm-up pass; one-clip-at-a-time `encode` is also timed.

Targets (issue #3, "Performance"): training under 10 minutes on this 2-core machine; encoding
at least 2,000 clips/min on one core.

If --dataset is not given, ../shared/datasets/bandai-namco-1 is converted into a temporary
folder first (`eai convert` defaults; the conversion time is printed but not counted).

Usage: python benchmarks/tokenizer_speed.py [--dataset DIR] [--steps N] [--encode-clips 1000]
       [--repeats 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from eai.toolkit.dataset import load_clips
from eai.toolkit.tokenizer import TokenizerConfig, load_tokenizer, train_tokenizer

BANDAI = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "bandai-namco-1"


def convert_bandai(tmp: Path) -> Path:
    from eai.converters.pipeline import ConvertConfig, run_convert

    if not BANDAI.is_dir():
        sys.exit(f"no dataset given and {BANDAI} not found; pass --dataset DIR")
    t = time.perf_counter()
    out = tmp / "bandai-namco-1"
    run_convert(ConvertConfig(inputs=[str(BANDAI)], out_dir=out, workers=0))
    print(f"converted {BANDAI} -> {out} in {time.perf_counter() - t:.1f} s (not counted)")
    return out


def eight_second_clips(clips, n: int, seed: int = 0):
    """n windows of 200-280 frames (about 8 s at 30 fps) from clips at least that long."""
    rng = np.random.default_rng(seed)
    long = [c for c in clips if c.num_frames >= 280]
    out = []
    for i in range(n):
        c = long[int(rng.integers(len(long)))]
        length = int(rng.integers(200, 281))
        s = int(rng.integers(0, c.num_frames - length + 1))
        out.append(dataclasses.replace(c, clip_id=f"{c.clip_id}#{i}",
                                       positions=c.positions[s: s + length]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", type=Path, help="Converted Bandai-Namco-1 (default: convert)")
    ap.add_argument("--steps", type=int, help="Override the default config's steps")
    ap.add_argument("--out", type=Path, help="Tokenizer directory (default: temporary)")
    ap.add_argument("--encode-clips", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="eai-tok-bench-") as tmp:
        tmp = Path(tmp)
        dataset = args.dataset or convert_bandai(tmp)
        out = args.out or tmp / "tokenizer"
        cfg = TokenizerConfig(**({"steps": args.steps} if args.steps else {}))
        load0 = os.getloadavg()[0]
        t = time.perf_counter()
        report = train_tokenizer([dataset], out, cfg)
        train_s = time.perf_counter() - t
        load1 = os.getloadavg()[0]
        print(f"train: {train_s:.1f} s wall ({train_s / 60:.2f} min), {cfg.steps} steps, "
              f"threads {torch.get_num_threads() if not cfg.threads else cfg.threads}; "
              f"load average {load0:.2f} -> {load1:.2f}")
        print(f"  {report.summary()}")
        print(f"  held-out MPJPE by part (mm): {report.mpjpe_by_part_mm}; "
              f"{report.held_out_clips} held-out / {report.train_clips} training clips")

        torch.set_num_threads(1)
        tok = load_tokenizer(out)
        root = tok.meta["reconstruction"]["root"]
        print(f"  held-out root motion error: velocity {root['velocity_mps']} m/s per frame, "
              f"clip mean speed {root['clip_mean_speed_mps']} m/s, yaw rate "
              f"{root['yaw_rate_dps']} deg/s, height {root['height_mm']} mm")
        clips = eight_second_clips(load_clips(dataset), args.encode_clips)
        frames = sum(c.num_frames for c in clips)
        tok.encode_many(clips[:50])  # warm-up
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            tok.encode_many(clips)
            times.append(time.perf_counter() - t)
        single = clips[:200]
        t = time.perf_counter()
        for c in single:
            tok.encode(c)
        single_rate = len(single) / (time.perf_counter() - t) * 60
        med = statistics.median(times)
        rate = len(clips) / med * 60
        print(f"encode (1 thread): {len(clips)} clips of {frames / len(clips) / 30:.1f} s mean, "
              f"median {med:.2f} s over {args.repeats} -> {rate:,.0f} clips/min "
              f"({frames / med:,.0f} frames/s); one clip at a time: {single_rate:,.0f} clips/min")
        ok_train, ok_enc = train_s < 600, rate >= 2000
        print(f"targets: training < 10 min: {'PASS' if ok_train else 'FAIL'}; "
              f"encoding >= 2,000 clips/min: {'PASS' if ok_enc else 'FAIL'}")
        if args.json:
            args.json.write_text(json.dumps({
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "torch": torch.__version__, "load_before": load0,
                            "load_after": load1},
                "config": cfg.to_dict(), "train_seconds": round(train_s, 1),
                "report": dataclasses.asdict(report), "root_error": root,
                "encode_clips_per_min": round(rate),
                "encode_single_clips_per_min": round(single_rate),
                "encode_times_s": times}, indent=2))


if __name__ == "__main__":
    main()
