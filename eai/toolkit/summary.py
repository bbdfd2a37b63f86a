"""Terminal summaries of a dataset and of a conversion (rich tables)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from eai.toolkit import dataset as ds


def dataset_table(dataset_dir: str | Path) -> Table:
    """Clips, frames and minutes per dataset and emotion."""
    df = ds.read_table(dataset_dir, ["dataset", "emotion", "label_raw", "num_frames",
                                     "duration_s"]).to_pandas()
    table = Table(title=f"{dataset_dir}", title_justify="left")
    for col, kw in (("dataset", {}), ("emotion", {}), ("clips", {"justify": "right"}),
                    ("frames", {"justify": "right"}), ("minutes", {"justify": "right"})):
        table.add_column(col, **kw)
    if df.empty:
        return table
    df["emotion"] = df["emotion"].fillna("(no emotion)")
    groups = df.groupby(["dataset", "emotion"]).agg(
        clips=("num_frames", "size"), frames=("num_frames", "sum"),
        seconds=("duration_s", "sum")).reset_index()
    for row in groups.itertuples():
        table.add_row(row.dataset, row.emotion, str(row.clips), f"{row.frames:,}",
                      f"{row.seconds / 60:.1f}")
    table.add_section()
    table.add_row("all", "", str(len(df)), f"{int(df['num_frames'].sum()):,}",
                  f"{df['duration_s'].sum() / 60:.1f}", style="bold")
    return table


def problems_table(report: list[dict[str, Any]], limit: int = 30) -> Table | None:
    bad = [ln for ln in report if ln["status"] != "ok" and not ln.get("already_present")]
    if not bad:
        return None
    table = Table(title=f"{len(bad)} file(s) not converted", title_justify="left")
    table.add_column("status")
    table.add_column("file")
    table.add_column("reason", overflow="fold")
    for ln in bad[:limit]:
        where = f" ({ln['position']})" if ln.get("position") else ""
        fix = f" Fix: {ln['fix']}" if ln.get("fix") else ""
        table.add_row(ln["status"], Path(ln["path"]).name, f"{ln['reason']}{where}.{fix}")
    if len(bad) > limit:
        table.add_row("...", f"{len(bad) - limit} more", "see report.jsonl")
    return table


def warnings_digest(report: list[dict[str, Any]]) -> list[str]:
    """Lossy steps and guesses, grouped: one line per kind of note with a count."""
    counts: dict[str, int] = {}
    for ln in report:
        for note in ln.get("notes") or []:
            # Group notes of one kind: the text before a colon or semicolon names the kind.
            key = note.split(";")[0] if "guessed" in note else note.split(":")[0]
            counts[key] = counts.get(key, 0) + 1
    return [f"{n} clip(s): {note}" for note, n in sorted(counts.items(), key=lambda x: -x[1])]


def print_convert_summary(console: Console, out_dir: Path, report: list[dict[str, Any]],
                          manifest: dict[str, Any]) -> None:
    console.print(dataset_table(out_dir))
    files = manifest["counts"]["files"]
    console.print("files: " + ", ".join(f"{v} {k}" for k, v in sorted(files.items())))
    digest = warnings_digest(report)
    if digest:
        console.print("[yellow]notes:[/yellow]")
        for line in digest[:12]:
            console.print(f"  {line}")
    problems = problems_table(report)
    if problems is not None:
        console.print(problems)
    console.print(f"dataset written to {out_dir} (manifest.json, "
                  f"{len(manifest['shards'])} shard(s), report.jsonl)")
