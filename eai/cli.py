"""The `eai` command line: parse, call the toolkit, print. Library errors become one line."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

app = typer.Typer(help="eai: the Emotion-Action Interpreter toolkit.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
dataset_app = typer.Typer(help="Inspect unified datasets.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")
console = Console(stderr=False)
err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


@app.command()
def convert(
    inputs: List[str] = typer.Argument(..., help="Files, folders (recursive) or glob patterns."),
    out: Path = typer.Option(..., "-o", "--out", help="Dataset directory to write."),
    profile: Optional[str] = typer.Option(None, help="Skeleton profile (default: detected)."),
    layout: Optional[str] = typer.Option(None, help="NPY joint layout, e.g. smpl-22."),
    units: Optional[str] = typer.Option(None, help="Source length unit when files state none "
                                        "(m, cm, mm, inch, cmu)."),
    fps: float = typer.Option(30.0, help="Frame rate of the dataset."),
    source_fps: Optional[float] = typer.Option(None, help="Frame rate of NPY files that state none."),
    max_gap: float = typer.Option(0.25, help="Interpolate missing runs up to this many seconds."),
    dataset: Optional[str] = typer.Option(None, help="Dataset name in clip ids (default: the "
                                          "input folder's name)."),
    label_pattern: Optional[str] = typer.Option(None, help="Regex on the file stem with named "
                                                "groups label/emotion, subject, action."),
    labels: Optional[Path] = typer.Option(None, help="CSV/TSV of labels keyed by file or clip id."),
    label_map: Optional[Path] = typer.Option(None, help="JSON or CSV mapping raw labels to "
                                             "emotions."),
    workers: int = typer.Option(0, help="Worker processes (0: all cores)."),
    strict: bool = typer.Option(False, help="Any bad file is fatal (exit 1, nothing written)."),
    append: bool = typer.Option(False, help="Add new files to an existing dataset."),
    shard_mb: float = typer.Option(64.0, help="Motion megabytes per Parquet shard."),
) -> None:
    """Convert BVH, C3D and NPY files into one unified dataset."""
    from eai.converters.base import ReadOptions
    from eai.converters.labels import LabelConfig, LabelError, LabelTable, load_label_map
    from eai.converters.pipeline import ConvertConfig, StrictError, run_convert
    from eai.toolkit.canonical import unit_scale
    from eai.toolkit.summary import print_convert_summary

    try:
        if units:
            unit_scale(units)
        read = ReadOptions(profile=profile, units=units, fps=fps, layout=layout,
                           source_fps=source_fps, max_gap_s=max_gap)
        label_cfg = LabelConfig(
            table=LabelTable(labels) if labels else None,
            pattern=re.compile(label_pattern) if label_pattern else None,
            label_map=load_label_map(label_map) if label_map else None)
    except (ValueError, OSError, re.error, LabelError) as e:
        _fail(str(e))
    config = ConvertConfig(inputs=inputs, out_dir=out, read=read, labels=label_cfg,
                           dataset=dataset, workers=workers, strict=strict, append=append,
                           shard_mb=shard_mb,
                           command="eai " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    with Progress(TextColumn("converting"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[last]}"), TimeRemainingColumn(),
                  console=err, transient=True) as progress:
        task = progress.add_task("convert", total=None, last="")

        def on_line(line: dict) -> None:
            progress.update(task, advance=1, last=Path(line["path"]).name[:40])

        try:
            result = run_convert(config, on_line=on_line,
                                 on_total=lambda n: progress.update(task, total=n))
        except StrictError as e:
            progress.stop()
            _fail(f"{e} (--strict: nothing was written)")
        except (FileNotFoundError, FileExistsError, ValueError) as e:
            progress.stop()
            _fail(str(e))
    if result.resumed:
        console.print(f"resumed an interrupted run: kept {result.resumed} converted clip(s)")
    print_convert_summary(console, out, result.report, result.manifest)


@app.command("sample-data")
def sample_data(
    out: Path = typer.Argument(..., help="Folder to write the synthetic demo set into."),
    clips_per_emotion: int = typer.Option(4, help="Clips per emotion and format."),
    seed: int = typer.Option(0, help="Random seed (the set is deterministic per seed)."),
) -> None:
    """Write a small SYNTHETIC emotion-labelled demo set (BVH, C3D, NPY)."""
    from eai.toolkit.sample_data import write_sample_data

    paths = write_sample_data(out, clips_per_emotion=clips_per_emotion, seed=seed)
    console.print(f"wrote {len(paths)} synthetic files to {out} (see {out}/README.txt)")


@dataset_app.command("info")
def dataset_info(path: Path = typer.Argument(..., help="Dataset directory.")) -> None:
    """Clips, frames and minutes per dataset and emotion."""
    from eai.toolkit import dataset as ds
    from eai.toolkit.summary import dataset_table, problems_table

    try:
        manifest = ds.read_manifest(path)
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))
    console.print(dataset_table(path))
    console.print(f"made by: {manifest.get('command') or '?'} (eai {manifest['eai_version']})")
    problems = problems_table(ds.read_report(path))
    if problems is not None:
        console.print(problems)


@app.command("profiles")
def list_profiles() -> None:
    """List the skeleton profiles and NPY layouts eai knows."""
    from rich.table import Table

    from eai.converters.profiles import profiles

    table = Table()
    for col in ("name", "kind", "npy layout", "description"):
        table.add_column(col)
    for p in profiles().values():
        table.add_row(p.name, p.kind, f"{len(p.layout)} joints" if p.layout else "",
                      p.description)
    console.print(table)


def main() -> None:  # pragma: no cover - console script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
