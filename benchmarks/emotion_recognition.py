"""Emotion recognition on Bandai-Namco-1: the real-data acceptance of issue #3, in one run.

Protocols (every method is fitted anew inside every split; no test label reaches training):
1. emo-shared, 5x5 stratified CV: the 7 emotion styles on the 10 contents every style has
   (77 clips, 11 per class); one score per repeat (seed), mean ± std over the 5 repeats.
2. emo-shared, leave-one-content-out: train on 9 contents, test on the 10th; the score is the
   mean over the 10 contents, for mgst also over --seeds model seeds (the baselines are
   deterministic, so they run once).
3. all 15 styles, 5x5 stratified CV on the dataset's own labels (`label_raw`; 174 clips): the
   emotion styles and the character styles (active, childish, ...).
4. joint training: protocol 1's splits, with the other converted datasets (the synthetic sample
   data and the Emotion-Gait fixtures, clips whose emotion is one of the 7) added to every
   training fold; tested on the same Bandai clips, so each method reads side by side with 1.
Methods: majority class, descriptors + standardised logistic regression (the baseline), and
mgst (eai.toolkit.classifier, default config, seed 0 unless stated).

The datasets are converted into --work (a temporary folder by default) from ../shared; pass
--bandai DIR to use an existing conversion. The wall time of protocol 1 (all three methods) is
the number the issue bounds (20 minutes on the 2-core machine).

Usage: python benchmarks/emotion_recognition.py [--bandai DIR] [--shared DIR] [--work DIR]
           [--seeds 3] [--only 1,2,3,4] [--kfold-seed 0] [--json OUT]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EMO_SHARED_ACTIONS = ("walk", "run", "dash", "walk-back", "walk-left", "walk-right", "bow",
                      "bye", "byebye", "guide")
GOALS = {"1": 0.82, "2": 0.82, "3": 0.70}


def convert(inputs: list[Path], out: Path, **kw) -> Path:
    from eai.converters.pipeline import ConvertConfig, run_convert

    if not (out / "manifest.json").is_file():
        run_convert(ConvertConfig(inputs=[str(p) for p in inputs], out_dir=out, workers=1, **kw))
    return out


def prepare(args: argparse.Namespace, work: Path) -> dict[str, Path]:
    from eai.toolkit.sample_data import write_sample_data

    shared = Path(args.shared)
    paths = {"bandai": Path(args.bandai) if args.bandai else
             convert([shared / "datasets" / "bandai-namco-1"], work / "bandai")}
    if "4" in args.only:
        sample = work / "sample-src"
        if not sample.exists():
            write_sample_data(sample, clips_per_emotion=4, seed=0)
        paths["sample"] = convert([sample], work / "sample", dataset="sample-data")
        gait = sorted((shared / "fixtures" / "npy").glob("emotiongait_*.npy"))
        paths["gait"] = convert(gait, work / "emotion-gait", dataset="emotion-gait")
    return paths


def methods(seed: int = 0) -> list:
    from eai.toolkit.baselines import (
        DescriptorFeatures,
        DescriptorLogReg,
        MajorityClass,
    )
    from eai.toolkit.classifier import ClassifierConfig, MGSTClassifier

    return [MajorityClass(), DescriptorLogReg(DescriptorFeatures()),
            MGSTClassifier(ClassifierConfig(seed=seed))]


def run(data, splits, ms) -> tuple[list, float]:
    from eai.toolkit.evaluation import run_protocol

    t = time.perf_counter()
    results = run_protocol(data.clips, data.labels, data.classes, splits, ms)
    return results, time.perf_counter() - t


def row(protocol: str, r, seconds: float | None, extra: dict | None = None) -> dict:
    acc, f1 = np.array(r.accuracy), np.array(r.macro_f1)
    return {"protocol": protocol, "method": r.name, "accuracy": float(acc.mean()),
            "accuracy_std": float(acc.std()), "macro_f1": float(f1.mean()),
            "macro_f1_std": float(f1.std()), "units": len(acc), "seconds": seconds,
            "per_class_recall": r.per_class_recall, "unit_scores": dict(zip(r.units, r.accuracy)),
            **(extra or {})}


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bandai", help="An existing conversion of bandai-namco-1.")
    ap.add_argument("--shared", default=str(root.parent / "shared"))
    ap.add_argument("--work", help="Folder for conversions (default: a temporary one).")
    ap.add_argument("--seeds", type=int, default=3, help="mgst seeds for protocol 2.")
    ap.add_argument("--only", default="1,2,3,4", help="Protocols to run, e.g. 1,2.")
    ap.add_argument("--kfold-seed", type=int, default=0, help="First seed of the 5x5 splits.")
    ap.add_argument("--json", help="Write every number here.")
    args = ap.parse_args()
    args.only = set(args.only.split(","))

    from eai.toolkit.evaluation import (
        LabelledClips,
        group_splits,
        kfold_splits,
        load_labelled_clips,
    )

    started = time.perf_counter()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        paths = prepare(args, work)
        bandai = str(paths["bandai"])
        emo = load_labelled_clips([bandai], EMO_SHARED_ACTIONS)
        kf = list(kfold_splits(emo.labels, 5, 5, args.kfold_seed))
        print(f"emo-shared: {len(emo.clips)} clips, classes {', '.join(emo.classes)}", flush=True)

        if "1" in args.only:
            res, sec = run(emo, kf, methods())
            rows += [row("1 emo-shared 5x5", r, sec, {"seconds_all_methods": sec}) for r in res]
            print(f"1 done in {sec:.0f} s", flush=True)
        if "2" in args.only:
            lo = list(group_splits(emo.actions))
            res, sec = run(emo, lo, methods()[:2])
            rows += [row("2 emo-shared leave-one-content-out", r, sec) for r in res]
            per_seed, t = [], time.perf_counter()
            for s in range(args.seeds):
                r = run(emo, lo, methods(seed=s)[2:])[0][0]
                per_seed.append(r)
                print(f"2 mgst seed {s}: {np.mean(r.accuracy):.3f}", flush=True)
            merged = per_seed[0]
            merged.accuracy = [a for r in per_seed for a in r.accuracy]
            merged.macro_f1 = [a for r in per_seed for a in r.macro_f1]
            merged.units = [f"{u} seed {s}" for s, r in enumerate(per_seed) for u in r.units]
            merged.confusion = sum(r.confusion for r in per_seed)
            rows.append(row("2 emo-shared leave-one-content-out", merged,
                            time.perf_counter() - t,
                            {"seed_means": [float(np.mean(r.accuracy)) for r in per_seed]}))
        if "3" in args.only:
            raw = load_labelled_clips([bandai], label="raw")
            res, sec = run(raw, list(kfold_splits(raw.labels, 5, 5, args.kfold_seed)),
                           methods())
            rows += [row("3 all 15 styles 5x5", r, sec) for r in res]
            print(f"3 done in {sec:.0f} s ({len(raw.clips)} clips)", flush=True)
        if "4" in args.only:
            extra = [c for d in (paths["sample"], paths["gait"])
                     for c in load_labelled_clips([str(d)]).clips if c.emotion in emo.classes]
            joint = LabelledClips(emo.clips + extra, np.concatenate(
                [emo.labels, [emo.classes.index(c.emotion) for c in extra]]), emo.classes)
            ex = np.arange(len(emo.clips), len(joint.clips))
            splits = [type(s)(np.concatenate([s.train, ex]), s.test, s.unit) for s in kf]
            res, sec = run(joint, splits, methods())
            counts = {d: sum(c.dataset == d for c in extra) for d in sorted({c.dataset
                                                                            for c in extra})}
            rows += [row("4 emo-shared 5x5 + joint training", r, sec, {"extra_clips": counts})
                     for r in res]
            print(f"4 done in {sec:.0f} s (+{counts} training clips)", flush=True)

    total = time.perf_counter() - started
    print()
    print(f"{'protocol':<38} {'method':<20} {'accuracy':>15} {'macro-F1':>15} {'seconds':>8}")
    for r in rows:
        goal = GOALS.get(r["protocol"][0]) if r["method"] == "mgst" else None
        mark = "" if goal is None else ("  goal met" if r["accuracy"] >= goal else
                                        f"  below the {goal:.0%} goal")
        print(f"{r['protocol']:<38} {r['method']:<20} {r['accuracy']:>7.3f} ± "
              f"{r['accuracy_std']:.3f} {r['macro_f1']:>7.3f} ± {r['macro_f1_std']:.3f} "
              f"{r['seconds'] or 0:>8.0f}{mark}")
        if "seed_means" in r:
            print(f"{'':<38} {'':<20} per seed: "
                  + ", ".join(f"{m:.3f}" for m in r["seed_means"]))
    print(f"wall time {total:.0f} s ({total / 60:.1f} min)")
    if args.json:
        meta = {"date": dt.datetime.now().isoformat(timespec="seconds"),
                "python": sys.version.split()[0], "platform": platform.platform(),
                "cpus": os.cpu_count(), "load_average": os.getloadavg(),
                "kfold_seed": args.kfold_seed, "mgst_seeds": args.seeds,
                "wall_seconds": total}
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
