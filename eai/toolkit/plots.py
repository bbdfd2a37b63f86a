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


# A schematic rest pose of the canonical skeleton for the picture in the docs, seen from the
# front (screen x = the subject's left, +X, drawn on the viewer's right), metres, y up.
_REST_FRONT = {
    "pelvis": (0.0, 0.95), "spine": (0.0, 1.12), "chest": (0.0, 1.32), "neck": (0.0, 1.50),
    "head": (0.0, 1.62),
    "l_shoulder": (0.19, 1.44), "l_elbow": (0.24, 1.16), "l_wrist": (0.30, 0.84),
    "r_shoulder": (-0.19, 1.44), "r_elbow": (-0.24, 1.16), "r_wrist": (-0.30, 0.84),
    "l_hip": (0.10, 0.90), "l_knee": (0.11, 0.50), "l_ankle": (0.12, 0.09),
    "l_foot": (0.15, 0.02),
    "r_hip": (-0.10, 0.90), "r_knee": (-0.11, 0.50), "r_ankle": (-0.12, 0.09),
    "r_foot": (-0.15, 0.02),
}


def plot_canonical_skeleton(path: str | Path) -> Path:
    """A PNG of the 19 canonical joints with their indices and names, front view."""
    from eai.toolkit.render import COLOURS
    from eai.toolkit.skeleton import BONES

    def side(name: str) -> str:
        return "left" if name.startswith("l_") else "right" if name.startswith("r_") else "trunk"

    fig = Figure(figsize=(6.4, 7.2), dpi=DPI, layout="constrained", facecolor="white")
    ax = fig.subplots()
    xy = np.array([_REST_FRONT[j] for j in CANONICAL_JOINTS])
    for p, c in BONES:
        ax.plot(xy[[p, c], 0], xy[[p, c], 1], lw=3, color=COLOURS[side(CANONICAL_JOINTS[c])],
                solid_capstyle="round")
    for i, name in enumerate(CANONICAL_JOINTS):
        colour = COLOURS[side(name)]
        ax.plot(*xy[i], "o", ms=6, color=colour)
        right = xy[i, 0] > 0 or (xy[i, 0] == 0 and i % 2 == 0)
        dy = -14 if name.endswith("_hip") else 0  # below the hip: the wrist label is beside it
        ax.annotate(f"{i} {name}", xy[i], xytext=(8 if right else -8, dy),
                    textcoords="offset points", ha="left" if right else "right",
                    va="center", fontsize=9, color=colour)
    ax.axhline(0.0, color="#bbbbbb", lw=1)
    ax.annotate("", (0.62, 0.3), (0.45, 0.3), arrowprops={"arrowstyle": "->"})
    ax.text(0.63, 0.3, "+X\n(subject's left)", va="center", fontsize=8)
    ax.annotate("", (0.45, 0.5), (0.45, 0.3), arrowprops={"arrowstyle": "->"})
    ax.text(0.45, 0.52, "+Y up", ha="center", fontsize=8)
    ax.text(0.0, -0.08, "floor, y = 0; the subject faces +Z (towards you) at the first frame",
            ha="center", va="top", fontsize=8, color="#505050")
    ax.set(xlim=(-0.75, 0.9), ylim=(-0.15, 1.75), aspect="equal",
           title="the canonical skeleton (front view; left blue, right vermillion)")
    ax.axis("off")
    return _save_png(fig, path)
