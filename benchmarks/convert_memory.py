"""Peak memory of `eai convert` on synthetic sample data, and how it scales.

What is measured: `eai convert` runs as a subprocess (`python -m eai.cli convert DIR -o OUT
--workers 2 [--shard-mb N]`) on clips from `eai.toolkit.sample_data.write_sample_data` (BVH, C3D
and NPY by default). While it runs, the resident memory of the whole process tree (the command
and every worker process) is sampled with psutil every 50 ms and summed; the peak of that sum is
the number that matters for "fits on a laptop" (target: under 1 GB for 2,000 clips). Also
reported: ru_maxrss from resource.getrusage(RUSAGE_CHILDREN) (the largest single process of the
tree, as the kernel saw it; exact but not summed), wall time and clips/s.

Why several runs: the pipeline promises memory that follows the Parquet shard size, not the
dataset size. So besides the default shard size, the same small `--shard-mb` is run on a 500-clip
and a 2,000-clip set: their peaks should be close. Each run is measured from a fresh Python
process running this script (so RUSAGE_CHILDREN holds that run only); wall times are the median
over --repeats.

Usage: python benchmarks/convert_memory.py [--clips 2000] [--small-clips 500] [--shard-mb 2]
                                           [--repeats 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TARGET_PEAK_BYTES = 1e9
SAMPLE_S = 0.05
FORMATS = ("bvh", "c3d", "npy")
EMOTIONS = 5  # write_sample_data writes clips_per_emotion clips for each of its 5 emotions


def make_clips(out_dir: Path, n: int, formats: tuple[str, ...], seed: int) -> int:
    """Write exactly n sample clips (the surplus of the last emotion is removed)."""
    try:
        from eai.toolkit.sample_data import write_sample_data
    except ImportError:
        raise SystemExit("error: eai.toolkit.sample_data is missing (write_sample_data); "
                         "this benchmark needs it to generate clips") from None
    per_emotion = math.ceil(n / (EMOTIONS * len(formats)))
    written = write_sample_data(out_dir, clips_per_emotion=per_emotion, seed=seed,
                                formats=formats)
    for path in written[n:]:
        path.unlink()
        path.with_suffix(".json").unlink(missing_ok=True)
    return min(n, len(written))


def tree_rss(proc) -> int:
    """Resident bytes of proc and all its descendants (processes that vanish count 0)."""
    import psutil
    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def measure_once(data_dir: Path, out_dir: Path, workers: int, shard_mb: float | None) -> dict:
    """Run one conversion as a child and watch it. Call in a fresh process (RUSAGE_CHILDREN)."""
    import psutil
    cmd = [sys.executable, "-m", "eai.cli", "convert", str(data_dir), "-o", str(out_dir),
           "--workers", str(workers)]
    if shard_mb is not None:
        cmd += ["--shard-mb", str(shard_mb)]
    peak, peak_procs, samples = 0, 0, 0
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc = psutil.Process(child.pid)
    # Drain the pipes on threads so a chatty child never blocks on a full pipe.
    out: dict[str, str] = {}
    readers = [threading.Thread(target=lambda k=k, s=s: out.__setitem__(k, s.read()))
               for k, s in (("stdout", child.stdout), ("stderr", child.stderr))]
    for r in readers:
        r.start()
    while child.poll() is None:
        rss = tree_rss(proc)
        samples += 1
        if rss > peak:
            peak = rss
            try:
                peak_procs = 1 + len(proc.children(recursive=True))
            except psutil.NoSuchProcess:
                pass
        time.sleep(SAMPLE_S)
    wall = time.perf_counter() - t0
    for r in readers:
        r.join()
    maxrss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    if child.returncode != 0:
        raise SystemExit(f"eai convert failed ({child.returncode}): {' '.join(cmd)}\n"
                         f"{out.get('stderr', '')[-2000:]}")
    manifest = json.loads((out_dir / "manifest.json").read_text())
    shards = len(list(out_dir.glob("clips-*.parquet")))
    return {"command": cmd, "wall_s": wall, "peak_tree_rss_bytes": peak,
            "processes_at_peak": peak_procs, "samples": samples,
            "ru_maxrss_children_bytes": maxrss_kib * 1024, "shards": shards,
            "manifest_counts": manifest.get("counts")}


def run_isolated(data_dir: Path, out_dir: Path, workers: int, shard_mb: float | None) -> dict:
    """measure_once in a fresh interpreter, so its RUSAGE_CHILDREN covers one run only."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    cmd = [sys.executable, __file__, "--_measure", str(data_dir), str(out_dir), str(workers),
           "" if shard_mb is None else str(shard_mb)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(res.stderr[-3000:] or res.stdout[-3000:])
    result = json.loads(res.stdout.strip().splitlines()[-1])
    shutil.rmtree(out_dir, ignore_errors=True)
    return result


def machine() -> dict:
    model = platform.processor()
    try:
        m = re.search(r"Model name:\s*(.+)",
                      subprocess.run(["lscpu"], capture_output=True, text=True).stdout)
        model = m.group(1).strip() if m else model
    except OSError:
        pass
    from importlib.metadata import version
    return {"cpu_model": model, "nproc": os.cpu_count(), "python": platform.python_version(),
            "eai": version("eai"),
            "date": dt.datetime.now().astimezone().isoformat(timespec="seconds")}


def main() -> int:
    if len(sys.argv) == 6 and sys.argv[1] == "--_measure":  # internal: one isolated run
        _, _, data, out, workers, shard = sys.argv
        print(json.dumps(measure_once(Path(data), Path(out), int(workers),
                                      float(shard) if shard else None)))
        return 0

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=2000, help="clips in the main set (2000)")
    ap.add_argument("--small-clips", type=int, default=500,
                    help="clips in the smaller set for the shard-size comparison (500)")
    ap.add_argument("--shard-mb", type=float, default=2.0,
                    help="the small shard size for the scaling comparison, MB (2)")
    ap.add_argument("--workers", type=int, default=2, help="eai convert --workers (2)")
    ap.add_argument("--formats", default=",".join(FORMATS),
                    help="sample-data formats, comma separated (bvh,c3d,npy)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs per configuration; medians are reported (3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tmp", type=Path, default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write the numbers to OUT")
    args = ap.parse_args()
    try:
        import psutil  # noqa: F401
    except ImportError:
        print("error: psutil is not installed (pip install psutil)", file=sys.stderr)
        return 2
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())

    info = machine()
    scratch = Path(tempfile.mkdtemp(prefix="eai-convert-mem-", dir=args.tmp))
    try:
        sets = {}
        for n in sorted({args.clips, args.small_clips}):
            t0 = time.perf_counter()
            made = make_clips(scratch / f"data-{n}", n, formats, args.seed)
            sets[n] = scratch / f"data-{n}"
            print(f"generated {made} clips ({', '.join(formats)}) in "
                  f"{time.perf_counter() - t0:.1f}s", flush=True)
        configs = [  # (label, clips, shard_mb or None for the default)
            (f"{args.clips} clips, default shard", args.clips, None),
            (f"{args.clips} clips, --shard-mb {args.shard_mb:g}", args.clips, args.shard_mb),
            (f"{args.small_clips} clips, --shard-mb {args.shard_mb:g}", args.small_clips,
             args.shard_mb),
        ]
        runs: dict[str, list[dict]] = {label: [] for label, _, _ in configs}
        for r in range(args.repeats):  # interleaved, so drift hits every configuration alike
            for label, n, shard in configs:
                res = run_isolated(sets[n], scratch / "out", args.workers, shard)
                runs[label].append(res)
                print(f"  repeat {r + 1}: {label}: peak {res['peak_tree_rss_bytes'] / 1e6:.0f} MB"
                      f" (tree of {res['processes_at_peak']}), ru_maxrss "
                      f"{res['ru_maxrss_children_bytes'] / 1e6:.0f} MB, {res['wall_s']:.1f}s, "
                      f"{res['shards']} shard(s)", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    summary = {}
    for label, n, shard in configs:
        rs = runs[label]
        wall = statistics.median(x["wall_s"] for x in rs)
        summary[label] = {
            "clips": n, "shard_mb": shard,
            "peak_tree_rss_mb_median":
                statistics.median(x["peak_tree_rss_bytes"] for x in rs) / 1e6,
            "peak_tree_rss_mb_max": max(x["peak_tree_rss_bytes"] for x in rs) / 1e6,
            "ru_maxrss_mb_median": statistics.median(x["ru_maxrss_children_bytes"]
                                                     for x in rs) / 1e6,
            "wall_s_median": wall, "clips_per_s": n / wall, "shards": rs[0]["shards"],
        }
    print(f"\n{'configuration':<32}{'peak tree MB':>13}{'(max)':>8}{'ru_maxrss MB':>14}"
          f"{'wall s':>8}{'clips/s':>9}{'shards':>8}")
    for label, s in summary.items():
        print(f"{label:<32}{s['peak_tree_rss_mb_median']:>13.0f}{s['peak_tree_rss_mb_max']:>8.0f}"
              f"{s['ru_maxrss_mb_median']:>14.0f}{s['wall_s_median']:>8.1f}"
              f"{s['clips_per_s']:>9.0f}{s['shards']:>8}")
    main_peak = max(x["peak_tree_rss_bytes"] for label, n, _ in configs if n == args.clips
                    for x in runs[label])
    big, small = (summary[configs[1][0]]["peak_tree_rss_mb_median"],
                  summary[configs[2][0]]["peak_tree_rss_mb_median"])
    ok = main_peak < TARGET_PEAK_BYTES
    print(f"\n[{'PASS' if ok else 'FAIL'}] peak tree RSS converting {args.clips} clips < 1 GB "
          f"(worst run {main_peak / 1e6:.0f} MB)")
    print(f"shard-size scaling: --shard-mb {args.shard_mb:g}: {args.small_clips} clips "
          f"{small:.0f} MB vs {args.clips} clips {big:.0f} MB (ratio {big / small:.2f})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "machine": info, "command": " ".join([sys.executable] + sys.argv),
            "formats": formats, "workers": args.workers, "repeats": args.repeats,
            "runs": runs, "summary": summary, "target_peak_under_1GB": ok,
            "worst_peak_mb": main_peak / 1e6, "scaling_ratio_big_over_small": big / small,
        }, indent=2, default=str))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
