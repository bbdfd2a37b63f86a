"""What `eai evaluate` shows: a terminal table, confusion-matrix pictures and a JSON file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from rich.table import Table

from eai.toolkit.dataset import atomic_write_json
from eai.toolkit.evaluation import MethodResult


def results_table(results: list[MethodResult], protocol: str) -> Table:
    table = Table(title=f"emotion recognition, protocol {protocol}", title_justify="left")
    for col in ("method", "accuracy", "macro-F1", "scores over"):
        table.add_column(col)
    for r in results:
        acc, f1 = np.array(r.accuracy), np.array(r.macro_f1)
        table.add_row(r.name, f"{acc.mean():.3f} ± {acc.std():.3f}",
                      f"{f1.mean():.3f} ± {f1.std():.3f}", f"{len(r.units)} units")
    return table


def confusion_table(result: MethodResult) -> Table:
    """Rows are the true emotion, columns the predicted one; recall on the right."""
    table = Table(title=f"{result.name}: confusion (rows true, columns predicted)",
                  title_justify="left")
    table.add_column("true \\ pred")
    for c in result.classes:
        table.add_column(c[:8], justify="right")
    table.add_column("recall", justify="right")
    recall = result.per_class_recall
    for i, c in enumerate(result.classes):
        row = result.confusion[i]
        cells = [f"[bold]{v}[/bold]" if j == i else (str(v) if v else ".")
                 for j, v in enumerate(row)]
        table.add_row(c, *cells, f"{recall[c]:.2f}")
    return table


def plot_confusion(result: MethodResult, path: Path, subtitle: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = result.confusion.astype(float)
    with np.errstate(invalid="ignore"):
        norm = cm / cm.sum(axis=1, keepdims=True)
    n = len(result.classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * n, 0.8 + 0.7 * n), dpi=120)
    ax.imshow(np.nan_to_num(norm), cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=8,
                        color="white" if norm[i, j] > 0.6 else "black")
    ax.set_xticks(range(n), result.classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), result.classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = np.mean(result.accuracy)
    ax.set_title(f"{result.name}\naccuracy {acc:.3f} {subtitle}".strip(), fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def write_results(path: Path, results: list[MethodResult], meta: dict) -> None:
    atomic_write_json(path, {**meta, "methods": [r.to_dict() for r in results]})


def load_results(path: Path) -> dict:
    return json.loads(Path(path).read_text())
