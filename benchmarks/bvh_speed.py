"""BVH reading speed on the Bandai-Namco set, on one core, against two yardsticks.

What is measured (frames per second of source motion, all in one process, single-threaded BLAS):

  floor     "numpy parse floor": read the file's text and parse only the MOTION numbers with one
            plain numpy call, either np.loadtxt or np.fromstring(sep=" ") on the text after the
            'Frame Time' line. Both are timed; the faster is the floor. No hierarchy, no
            kinematics, no checks: the physical floor of a text format in numpy.
  eai.read  eai.converters.bvh.read(path): parse + forward kinematics + retarget to the
            canonical skeleton + canonicalisation + resampling (+ the source file's sha256).
  read_raw  eai.converters.bvh.read_raw(path): parse + forward kinematics to the global
            positions of every joint and End Site.
  bvhio     the `bvhio` package: bvhio.readAsHierarchy(path), then for every frame
            root.loadPose(frame) and each joint's PositionWorld (the package's documented way of
            getting per-frame world positions), gathered into a (T, J, 3) array.

bvhio is slow, so it runs on a fixed subset of files (evenly spaced through the sorted list);
eai and the floor are timed on that same subset too, so the bvhio ratio is apples to apples, and
on the whole set for the absolute figures.

Each repeat times every method once (the fast methods make several passes over the small subset
and count the mean pass), interleaved (the order rotates between repeats), after one
untimed warm-up pass (page cache, lazy imports). Reported: the median over repeats of each
method's total time, frames/s from that median, and ratios as the median of the per-repeat
ratios (both sides measured in the same repeat, which cancels much of a noisy machine's drift).

Before timing, once: eai.read_raw's global joint positions are compared with bvhio's world
positions on one file (joints matched by name), so both really do the same work.

Targets (issue #2, "Performance"): eai.read >= 30,000 frames/s on one core; eai.read >= 20x
bvhio; eai.read >= 45% of the numpy parse floor.

Usage: python benchmarks/bvh_speed.py [--repeats 5] [--subset-files 10] [--json OUT]
"""

from __future__ import annotations

import os

# Single core: pin the BLAS/OpenMP pools to one thread before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import gc  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = PROJECT_ROOT / ".." / "shared" / "datasets" / "bandai-namco-1" / "data"

TARGET_FPS = 30_000
TARGET_VS_BVHIO = 20.0
TARGET_VS_FLOOR = 0.45

_FRAMES_RE = re.compile(r"Frames\s*:\s*(\d+)")


# --- the methods: each takes one path and does the full work for that file -----------------

def _motion_text(path: Path) -> str:
    text = path.read_text()
    start = text.index("\n", text.index("Frame Time")) + 1
    return text[start:]


def floor_loadtxt(path: Path) -> np.ndarray:
    return np.loadtxt(io.StringIO(_motion_text(path)), dtype=np.float64)


def floor_fromstring(path: Path) -> np.ndarray:
    return np.fromstring(_motion_text(path), dtype=np.float64, sep=" ")


def eai_read(path: Path):
    from eai.converters import bvh
    return bvh.read(path)


def eai_read_raw(path: Path):
    from eai.converters import bvh
    return bvh.read_raw(path)


def bvhio_world_positions(path: Path) -> tuple[np.ndarray, list[str]]:
    """(T, J, 3) world positions of every joint (bvhio has no End Site joints), and names."""
    import bvhio
    root = bvhio.readAsHierarchy(str(path))
    joints = [joint for joint, _index, _depth in root.layout()]
    n_frames = root.getKeyframeRange()[1] + 1
    out = np.empty((n_frames, len(joints), 3))
    for frame in range(n_frames):
        root.loadPose(frame)
        for k, joint in enumerate(joints):
            p = joint.PositionWorld
            out[frame, k] = (p.x, p.y, p.z)
    return out, [j.Name for j in joints]


# --- harness -----------------------------------------------------------------------------------

def frames_in(path: Path) -> int:
    with open(path) as f:
        for line in f:
            m = _FRAMES_RE.search(line)
            if m and line.lstrip().startswith("Frames"):
                return int(m.group(1))
    raise ValueError(f"{path}: no 'Frames:' line")


def time_over(fn, files: list[Path], passes: int = 1) -> float:
    """Seconds for one pass of fn over files (the mean of `passes` back-to-back passes)."""
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(passes):
        for path in files:
            fn(path)
    return (time.perf_counter() - t0) / passes


def check_agreement(path: Path) -> float:
    """Max |eai.read_raw - bvhio| over all frames and joints of one file, in the file's units."""
    from eai.converters import bvh
    raw = bvh.read_raw(path)
    ref, names = bvhio_world_positions(path)
    idx = [raw.names.index(n) for n in names]
    if raw.positions.shape[0] != ref.shape[0]:
        raise SystemExit(f"agreement check: eai has {raw.positions.shape[0]} frames, bvhio "
                         f"{ref.shape[0]} on {path.name}")
    return float(np.abs(raw.positions[:, idx] - ref).max())


def machine() -> dict:
    model = platform.processor()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"Model name:\s*(.+)", lscpu)
        model = m.group(1).strip() if m else model
    except OSError:
        pass
    from importlib.metadata import version

    import bvhio  # noqa: F401
    return {"cpu_model": model, "nproc": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "bvhio": version("bvhio"), "eai": version("eai"),
            "date": dt.datetime.now().astimezone().isoformat(timespec="seconds")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help="folder of Bandai-Namco .bvh files (default: <project>/../shared/...)")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats (default 5)")
    ap.add_argument("--subset-files", type=int, default=10,
                    help="files in the bvhio subset, evenly spaced (default 10)")
    ap.add_argument("--subset-passes", type=int, default=10,
                    help="passes over the subset per repeat for the fast methods, so their "
                         "times are well above timer noise (default 10; bvhio always 1)")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write the numbers to OUT")
    args = ap.parse_args()

    files = sorted(args.data.glob("*.bvh"))
    if not files:
        print(f"error: no .bvh files in {args.data.resolve()} — the Bandai-Namco set is expected "
              f"at <project root>/../shared/datasets/bandai-namco-1/data; pass --data DIR.",
              file=sys.stderr)
        return 2
    try:
        import bvhio  # noqa: F401
    except ImportError:
        print("error: the bvhio package is not installed (pip install bvhio)", file=sys.stderr)
        return 2
    warnings.simplefilter("ignore", DeprecationWarning)  # np.fromstring(sep=...) on some numpys

    subset = [files[int(i)] for i in np.linspace(0, len(files) - 1, args.subset_files)]
    frames_all = sum(frames_in(p) for p in files)
    frames_sub = sum(frames_in(p) for p in subset)
    info = machine()
    print(f"{len(files)} files, {frames_all} frames; bvhio subset: {len(subset)} files, "
          f"{frames_sub} frames; {args.repeats} repeats; {info['cpu_model']}, "
          f"nproc={info['nproc']}")

    # Sanity: the floor really parses all the numbers, and eai agrees with bvhio.
    for p in files[:3]:
        a, b = floor_loadtxt(p), floor_fromstring(p)
        assert a.size == b.size and np.allclose(a.reshape(-1), b), p
    max_diff = check_agreement(subset[0])
    agree_ok = max_diff < 1e-3
    print(f"agreement eai.read_raw vs bvhio on {subset[0].name}: max |diff| = {max_diff:.3g} "
          f"file units ({'ok' if agree_ok else 'MISMATCH'}, tolerance 1e-3)")

    methods = {  # name -> (function, files)
        "floor_loadtxt": (floor_loadtxt, files),
        "floor_fromstring": (floor_fromstring, files),
        "eai_read": (eai_read, files),
        "eai_read_raw": (eai_read_raw, files),
        "sub_floor_loadtxt": (floor_loadtxt, subset),
        "sub_floor_fromstring": (floor_fromstring, subset),
        "sub_eai_read": (eai_read, subset),
        "sub_eai_read_raw": (eai_read_raw, subset),
        "sub_bvhio": (lambda p: bvhio_world_positions(p), subset),
    }
    for fn, fs in methods.values():  # warm-up: page cache, lazy imports, first-call costs
        time_over(fn, fs[:3])
    times: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for r in range(args.repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            fn, fs = methods[name]
            fast_subset = name.startswith("sub_") and name != "sub_bvhio"
            times[name].append(time_over(fn, fs, args.subset_passes if fast_subset else 1))
        print(f"  repeat {r + 1}/{args.repeats}: " + ", ".join(
            f"{n}={times[n][-1]:.3f}s" for n in names), flush=True)

    med = {n: statistics.median(t) for n, t in times.items()}
    fps = {n: (frames_sub if n.startswith("sub_") else frames_all) / med[n] for n in names}

    def ratio(num: str, den: str) -> float:
        """Median of per-repeat speed ratios num/den (time den / time num)."""
        return statistics.median(d / n for n, d in zip(times[num], times[den]))

    def floor_ratio(num: str, prefix: str = "") -> float:
        return statistics.median(
            min(lt, fs) / t for t, lt, fs in zip(times[prefix + num],
                                                 times[prefix + "floor_loadtxt"],
                                                 times[prefix + "floor_fromstring"]))

    floor_name = min(("floor_loadtxt", "floor_fromstring"), key=lambda n: med[n])
    ratios = {
        "eai_read_vs_bvhio": ratio("sub_eai_read", "sub_bvhio"),
        "eai_read_raw_vs_bvhio": ratio("sub_eai_read_raw", "sub_bvhio"),
        "eai_read_vs_floor": floor_ratio("eai_read"),
        "eai_read_raw_vs_floor": floor_ratio("eai_read_raw"),
        "sub_eai_read_vs_floor": floor_ratio("eai_read", "sub_"),
    }
    targets = {
        f"eai.read >= {TARGET_FPS:,} frames/s (one core)": fps["eai_read"] >= TARGET_FPS,
        f"eai.read >= {TARGET_VS_BVHIO:g}x bvhio": ratios["eai_read_vs_bvhio"] >= TARGET_VS_BVHIO,
        f"eai.read >= {TARGET_VS_FLOOR:.0%} of numpy parse floor":
            ratios["eai_read_vs_floor"] >= TARGET_VS_FLOOR,
    }

    print()
    print(f"{'method':<22}{'set':>8}{'frames':>8}{'median s':>10}{'frames/s':>12}"
          f"{'min..max s':>18}")
    for n in names:
        t = times[n]
        print(f"{n.removeprefix('sub_'):<22}{'subset' if n.startswith('sub_') else 'all':>8}"
              f"{frames_sub if n.startswith('sub_') else frames_all:>8}{med[n]:>10.3f}"
              f"{fps[n]:>12,.0f}{f'{min(t):.3f}..{max(t):.3f}':>18}")
    print(f"\nnumpy parse floor = {floor_name} ({fps[floor_name]:,.0f} frames/s)")
    print("ratios (median of per-repeat ratios):")
    for k, v in ratios.items():
        print(f"  {k:<24} {v:8.3f}")
    print("targets:")
    for k, ok in targets.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {k}")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "machine": info, "command": " ".join([sys.executable] + sys.argv),
            "files": len(files), "frames": frames_all,
            "subset": {"files": [p.name for p in subset], "frames": frames_sub},
            "repeats": args.repeats, "times_s": times, "median_s": med, "frames_per_s": fps,
            "floor": floor_name, "ratios": ratios,
            "agreement_max_abs_diff": max_diff, "agreement_file": subset[0].name,
            "targets": targets,
        }, indent=2))
        print(f"wrote {args.json}")
    return 0 if agree_ok else 1


if __name__ == "__main__":
    sys.exit(main())
