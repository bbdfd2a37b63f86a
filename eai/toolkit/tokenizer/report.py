"""`eai tokenizer report`: the figures of a trained tokenizer and its codebook-usage plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from eai.toolkit.tokenizer.features import PART_NAMES
from eai.toolkit.tokenizer.metrics import codebook_usage, reconstruction_error


def usage_on_dataset(tok, dataset_dir: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Codebook usage and reconstruction error of the tokenizer on every clip of a dataset."""
    from eai.toolkit.dataset import load_clips

    clips = load_clips(dataset_dir)
    if not clips:
        raise ValueError(f"{dataset_dir}: the dataset has no clips")
    codes = tok.encode_many(clips)
    return codebook_usage(codes, tok.num_codes), reconstruction_error(tok, clips, codes)


def report_lines(meta: dict[str, Any], usage: dict[str, Any] | None = None,
                 rec: dict[str, Any] | None = None, source: str = "") -> list[str]:
    """Plain lines: reconstruction and codebook figures (from tokenizer.json unless given)."""
    r = meta["report"]
    cfg = meta["config"]
    head = (f"tokenizer: levels {'x'.join(map(str, cfg['levels']))} = {r['num_codes']} codes, "
            f"hidden {cfg['hidden']}, {cfg['steps']} steps, one token per "
            f"{2 ** cfg['downsample']} frames per part; eai {meta['eai_version']}")
    lines = [head]
    for d in meta["datasets"]:
        lines.append(f"trained on {', '.join(d['names'])}: {d['train_clips']} clips "
                     f"({d['held_out_clips']} held out) from {d['path']}")
    rec = rec or meta["reconstruction"]
    where = source or r["mpjpe_on"]
    lines.append(f"MPJPE ({where}): {rec['mpjpe_mm']} mm; mean-pose baseline "
                 f"{rec['mean_pose_baseline_mm']} mm")
    if "root" in rec:
        root = rec["root"]
        lines.append(f"root motion error: velocity {root['velocity_mps']} m/s, yaw rate "
                     f"{root['yaw_rate_dps']} deg/s, height {root['height_mm']} mm; clip mean "
                     f"speed {root['clip_mean_speed_mps']} m/s")
    u = usage or meta["usage_train"]
    lines.append(f"codebook ({source or 'training clips'}): perplexity {u['perplexity']}, "
                 f"used {u['used_codes']}/{u['num_codes']}, dead {u['dead_codes']}, "
                 f"{u['tokens']} part tokens")
    if usage is None and meta.get("usage_held_out"):
        h = meta["usage_held_out"]
        lines.append(f"codebook (held-out clips): perplexity {h['perplexity']}, used "
                     f"{h['used_codes']}/{h['num_codes']}")
    return lines


def part_table(meta: dict[str, Any], usage: dict[str, Any] | None = None,
               rec: dict[str, Any] | None = None):
    """A terminal table per body part: MPJPE, codes used and perplexity (same sources as
    report_lines)."""
    from rich.table import Table

    rec, u = rec or meta["reconstruction"], usage or meta["usage_train"]
    table = Table(title="by body part", title_justify="left")
    for name in ("part", "MPJPE mm", "codes used", "perplexity"):
        table.add_column(name, justify="left" if name == "part" else "right")
    for part in PART_NAMES:
        by = u["by_part"].get(part, {})
        table.add_row(part, f"{rec['by_part'].get(part)}", f"{by.get('used_codes', '')}"
                      f"/{u['num_codes']}", f"{by.get('perplexity', '')}")
    return table


def plot_usage(usage: dict[str, Any], path: str | Path, title: str = "") -> None:
    """Two panels: counts per code id stacked by body part, and codes ranked by count (log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(usage["counts"], dtype=np.int64)  # (parts, codes)
    fig, (a, b) = plt.subplots(2, 1, figsize=(11, 6.5))
    bottom = np.zeros(counts.shape[1])
    for p, name in enumerate(PART_NAMES):
        a.bar(np.arange(counts.shape[1]), counts[p], bottom=bottom, width=1.0, label=name)
        bottom += counts[p]
    a.set_xlim(-0.5, counts.shape[1] - 0.5)
    a.set_xlabel("code id (<st_N>)")
    a.set_ylabel("uses")
    a.legend(ncol=5, fontsize=8)
    a.set_title(f"{title} perplexity {usage['perplexity']}, used {usage['used_codes']}/"
                f"{usage['num_codes']}, dead {usage['dead_codes']}".strip())
    ranked = np.sort(counts.sum(0))[::-1]
    ranked = ranked[ranked > 0]  # dead codes have no bar
    b.bar(np.arange(len(ranked)), ranked, width=1.0, color="grey")
    b.set_xlim(-0.5, counts.shape[1] - 0.5)
    b.set_yscale("log")
    b.set_xlabel("codes ranked by use (dead codes: no bar)")
    b.set_ylabel("uses (log)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
