"""Kinematic descriptor speed on the Bandai-Namco set, on one core.

What is measured: eai.toolkit.descriptors.compute_descriptors(clip) on every clip of the
converted Bandai-Namco-1 dataset (174 clips, 30 fps, median about 5 s, one of 63 s), clips
already in memory (dataset loading is not timed). Each repeat times one pass over all clips in
wall-clock time and in this process's CPU time; reported are the median pass over repeats of
each, clips/min from it, and the per-clip wall time at the median, 90th percentile and maximum
clip length (from one extra timed pass). The wall-clock rate is the headline; the CPU-time
rate is what one core delivers when other processes share the machine (then the two differ).
One untimed warm-up pass first (lazy imports, caches). BLAS/OpenMP pools are pinned to one
thread.

Target (issue #3, "Performance"): at least 20,000 clips/min on one core.

Usage: python benchmarks/descriptors_speed.py [--dataset DIR] [--repeats 7] [--json OUT]
Without --dataset, ../shared/datasets/bandai-namco-1 is converted into a temporary folder first
(`eai convert`, about 3 s).
"""

from __future__ import annotations

import os

# Single core: pin the BLAS/OpenMP pools to one thread before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BANDAI = PROJECT_ROOT / ".." / "shared" / "datasets" / "bandai-namco-1"
TARGET_CLIPS_PER_MIN = 20_000


def convert_bandai(out: Path) -> None:
    cmd = [sys.executable, "-c", "from eai.cli import app; app()", "convert", str(BANDAI),
           "-o", str(out), "--workers", "1"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", type=Path, help="a converted Bandai-Namco-1 dataset")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", type=Path, metavar="OUT", help="write the numbers to OUT")
    args = ap.parse_args()

    from eai.toolkit.dataset import load_clips
    from eai.toolkit.descriptors import DESCRIPTORS, compute_descriptors

    with tempfile.TemporaryDirectory() as tmp:
        data = args.dataset
        if data is None:
            data = Path(tmp) / "bn"
            print(f"converting {BANDAI.resolve()} -> {data}")
            convert_bandai(data)
        clips = load_clips(data)
    frames = np.array([c.num_frames for c in clips])
    print(f"{len(clips)} clips, {frames.sum()} frames, length median "
          f"{np.median(frames) / 30:.1f} s (min {frames.min()}, max {frames.max()} frames); "
          f"{len(DESCRIPTORS)} descriptors")

    for c in clips:  # warm-up
        compute_descriptors(c)
    passes, cpu_passes = [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for c in clips:
            compute_descriptors(c)
        passes.append(time.perf_counter() - t0)
        cpu_passes.append(time.process_time() - c0)
    per_clip = np.empty(len(clips))
    for i, c in enumerate(clips):
        t0 = time.perf_counter()
        compute_descriptors(c)
        per_clip[i] = time.perf_counter() - t0

    median_pass = statistics.median(passes)
    median_cpu = statistics.median(cpu_passes)
    rate = len(clips) / median_pass * 60.0
    cpu_rate = len(clips) / median_cpu * 60.0
    order = np.argsort(frames)
    pick = {"median": order[len(order) // 2], "p90": order[int(0.9 * (len(order) - 1))],
            "max": order[-1]}
    print(f"median pass {median_pass * 1e3:.1f} ms over {args.repeats} repeats "
          f"(min {min(passes) * 1e3:.1f}, max {max(passes) * 1e3:.1f}); "
          f"CPU time {median_cpu * 1e3:.1f} ms")
    for k, i in pick.items():
        print(f"  {k:6s} clip ({frames[i]:5d} frames): {per_clip[i] * 1e3:.2f} ms")
    ok = rate >= TARGET_CLIPS_PER_MIN
    print(f"descriptors: {rate:,.0f} clips/min on one core "
          f"(target >= {TARGET_CLIPS_PER_MIN:,}: {'ok' if ok else 'MISSED'}); "
          f"{cpu_rate:,.0f} clips/min of CPU time")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    if load > 1.5:
        print(f"note: load average {load:.1f} on {os.cpu_count()} cores: other processes share "
              f"the machine, the wall-clock figure is pessimistic")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "benchmark": "descriptors_speed", "clips": len(clips), "frames": int(frames.sum()),
            "descriptors": len(DESCRIPTORS), "repeats": args.repeats,
            "median_pass_s": median_pass, "clips_per_min": rate,
            "median_pass_cpu_s": median_cpu, "clips_per_min_cpu": cpu_rate,
            "target_clips_per_min": TARGET_CLIPS_PER_MIN, "ok": ok,
            "per_clip_ms": {k: float(per_clip[i] * 1e3) for k, i in pick.items()},
            "python": platform.python_version(), "numpy": np.__version__,
            "machine": platform.machine(), "processor": platform.processor(),
        }, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
