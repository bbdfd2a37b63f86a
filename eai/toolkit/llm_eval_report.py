"""What `eai evaluate --model` shows: metric and confusion tables, the comparison of two models,
the summary line and the confusion-matrix PNG, all read from an eval.json document."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from eai.toolkit.dataset import atomic_write_bytes


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def metric_rows(doc: dict[str, Any]) -> list[tuple[str, float | None]]:
    """(name, value) of every headline metric, per-dataset accuracies last."""
    m, cal = doc["metrics"], doc["metrics"]["calibration"]
    rouge = m.get("rouge_l") or {}
    rows = [("accuracy", m["accuracy"]), ("macro-F1", m["macro_f1"]),
            ("parsed", m["parse_share"]), ("explained", m.get("explained_share")),
            ("faithful", m["faithful_share"]),
            ("cites evidence", m.get("cites_evidence_share")),
            ("grounded (cites, contradicts nothing)", m.get("grounded_share")),
            ("claim precision (supported / checked)", m.get("claim_precision")),
            ("mean confidence", cal["mean_confidence"]),
            ("top-third accuracy", cal["top_third_accuracy"]),
            ("calibration error (ECE)", cal["ece"])]
    if m.get("rouge_l") is not None:
        rows.append((f"ROUGE-L F1 ({rouge['clips']} clips)", rouge["f1"]))
    for name, d in doc["per_dataset"].items():
        rows.append((f"accuracy, {name}", d["accuracy"]))
        rows.append((f"macro-F1, {name}", d["macro_f1"]))
    return rows


def metrics_table(doc: dict[str, Any]) -> Table:
    c = doc["counts"]
    table = Table(title=f"{doc['model_version']} on {Path(doc['dataset']['dir']).name}, split "
                        f"{doc['split']} ({c['clips']} clips, {doc['mode']} mode)",
                  title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metric_rows(doc):
        table.add_row(name, _fmt(value))
    return table


def confusion_table(doc: dict[str, Any]) -> Table:
    """Rows are the true emotion, columns the answered one (+ unparsed); recall on the right."""
    conf, recall = doc["confusion"], doc["metrics"]["per_class_recall"]
    table = Table(title=f"{doc['model_version']}: confusion (rows true, columns answered)",
                  title_justify="left")
    table.add_column("true \\ answer")
    for c in conf["columns"]:
        table.add_column(c[:8], justify="right")
    table.add_column("recall", justify="right")
    for row, counts in zip(conf["rows"], conf["matrix"]):
        diag = conf["columns"].index(row)
        cells = [f"[bold]{v}[/bold]" if j == diag else (str(v) if v else ".")
                 for j, v in enumerate(counts)]
        table.add_row(row, *cells, f"{recall[row]:.2f}")
    return table


def summary_line(doc: dict[str, Any]) -> str:
    m = doc["metrics"]
    return (f"{doc['model_version']}  accuracy {_fmt(m['accuracy'])}  macro-F1 "
            f"{_fmt(m['macro_f1'])}  parsed {_fmt(m['parse_share'], 2)}  explained "
            f"{_fmt(m.get('explained_share'), 2)}  faithful {_fmt(m['faithful_share'], 2)}  "
            f"cites evidence {_fmt(m.get('cites_evidence_share'), 2)}  grounded "
            f"{_fmt(m.get('grounded_share'), 2)}  claim precision "
            f"{_fmt(m.get('claim_precision'), 2)}")


def compare_rows(this: dict[str, Any], other: dict[str, Any]
                 ) -> list[tuple[str, float | None, float | None, float | None]]:
    """(metric, this, other, this - other) for every metric either evaluation has."""
    a, b = dict(metric_rows(this)), dict(metric_rows(other))
    names = list(a) + [n for n in b if n not in a]
    rows = []
    for n in names:
        x, y = a.get(n), b.get(n)
        rows.append((n, x, y, x - y if x is not None and y is not None else None))
    return rows


def compare_table(this: dict[str, Any], other: dict[str, Any]) -> Table:
    table = Table(title=f"{this['model_version']} vs {other['model_version']} (split "
                        f"{this['split']}, {this['counts']['clips']} clips)",
                  title_justify="left")
    for col, justify in (("metric", "left"), (this["model_version"], "right"),
                         (other["model_version"], "right"), ("difference", "right")):
        table.add_column(col, justify=justify)
    for name, x, y, d in compare_rows(this, other):
        table.add_row(name, _fmt(x), _fmt(y), "n/a" if d is None else f"{d:+.3f}")
    return table


def plot_confusion_png(doc: dict[str, Any], path: Path) -> None:
    """Row-normalised confusion matrix with counts; the last column is "unparsed"."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conf = doc["confusion"]
    cm = np.asarray(conf["matrix"], dtype=float)
    norm = cm / cm.sum(axis=1, keepdims=True)
    n_rows, n_cols = cm.shape
    fig, ax = plt.subplots(figsize=(1.2 + 0.75 * n_cols, 1.0 + 0.7 * n_rows), dpi=120)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(n_rows):
        for j in range(n_cols):
            if cm[i, j]:
                ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=8,
                        color="white" if norm[i, j] > 0.6 else "black")
    ax.axvline(n_cols - 1.5, color="grey", linewidth=0.8)  # sets "unparsed" apart
    ax.set_xticks(range(n_cols), conf["columns"], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n_rows), conf["rows"], fontsize=8)
    ax.set_xlabel("answered")
    ax.set_ylabel("true")
    m = doc["metrics"]
    ax.set_title(f"{doc['model_version']} ({doc['split']}, {doc['counts']['clips']} clips)\n"
                 f"accuracy {_fmt(m['accuracy'])}, macro-F1 {_fmt(m['macro_f1'])}, parsed "
                 f"{_fmt(m['parse_share'], 2)}", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
