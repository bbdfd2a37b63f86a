"""Pictures of a whole dataset (the motion of single clips is drawn by render.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from eai.toolkit import dataset as ds
from eai.toolkit.render import DPI, HORIZONTAL, _save_png
from eai.toolkit.skeleton import CANONICAL_JOINTS


def plot_dataset_overview(dataset_dir: str | Path, path: str | Path) -> Path:
    """A PNG of a dataset without loading its motion: clips per emotion and dataset, clip
    durations per dataset, and the share of clips that have each canonical joint."""
    manifest = ds.read_manifest(dataset_dir)
    df = ds.read_table(dataset_dir, ["dataset", "emotion", "duration_s", "joint_mask"]).to_pandas()
    if df.empty:
        raise ValueError(f"{dataset_dir}: the dataset has no clips to plot")
    df["emotion"] = df["emotion"].fillna("(no emotion)")
    names = sorted(df["dataset"].unique())
    fig = Figure(figsize=(15, 5.5), dpi=DPI, layout="constrained", facecolor="white")
    a, b, c = fig.subplots(1, 3, width_ratios=[1.4, 1.0, 0.8])
    counts = df.groupby(["emotion", "dataset"]).size().unstack(fill_value=0)
    order = sorted(counts.index, key=lambda e: (e == "(no emotion)", -counts.loc[e].sum(), e))
    counts = counts.loc[order, names]
    bottom = np.zeros(len(counts))
    for k, name in enumerate(names):
        a.bar(counts.index, counts[name], bottom=bottom, label=name, color=f"C{k % 10}")
        bottom += counts[name].to_numpy()
    for x, total in enumerate(bottom):
        a.text(x, total, f"{total:g}", ha="center", va="bottom", fontsize=8)
    a.set_ylim(0, bottom.max() * 1.08)  # bars stacked on empty ones pin the autoscale
    a.set(title="clips per emotion", ylabel="clips")
    a.tick_params(axis="x", labelrotation=35)
    a.legend(fontsize=8, title="dataset", title_fontsize=8)
    rng = np.random.default_rng(0)  # jitter the dots so that equal durations stay visible
    for k, name in enumerate(names):
        dur = df.loc[df["dataset"] == name, "duration_s"].to_numpy()
        b.boxplot([dur], positions=[k], widths=0.6, showfliers=False, **HORIZONTAL)
        b.scatter(dur, k + rng.uniform(-0.2, 0.2, len(dur)), s=8, alpha=0.5, color=f"C{k % 10}")
    b.set_yticks(range(len(names)), names)
    b.invert_yaxis()  # first dataset on top, as in the legend
    b.set(title="clip durations", xlabel="seconds")
    share = np.array([np.stack(df.loc[df["dataset"] == d, "joint_mask"].to_numpy()).mean(0)
                      for d in names]).T  # (joints, datasets)
    c.imshow(share, vmin=0, vmax=1, cmap="Greens", aspect="auto")
    c.set_yticks(range(len(CANONICAL_JOINTS)), CANONICAL_JOINTS, fontsize=8)
    c.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
    if len(names) <= 6:
        for (j, d), s in np.ndenumerate(share):
            c.text(d, j, f"{s:.0%}", ha="center", va="center", fontsize=7,
                   color="white" if s > 0.6 else "black")
    c.set_title("clips with each joint")
    fig.suptitle(f"{Path(dataset_dir).name}: {len(df)} clips, "
                 f"{df['duration_s'].sum() / 60:.1f} min, {manifest.get('fps') or '?'} fps")
    return _save_png(fig, path)
