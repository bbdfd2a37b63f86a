"""The `eai` command line: parse, call the toolkit, print. Library errors become one line."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

# eai shows its own progress; the per-tensor bars of transformers and huggingface_hub
# ("Loading weights 272/272") are noise between them. Set it to 0 to see them again.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

app = typer.Typer(help="eai: the Emotion-Action Interpreter toolkit.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
dataset_app = typer.Typer(help="Inspect unified datasets.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")
tokenizer_app = typer.Typer(help="Train and use the skeleton tokenizer (MGST).",
                            no_args_is_help=True)
app.add_typer(tokenizer_app, name="tokenizer")
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
    source_fps: Optional[float] = typer.Option(None, help="Frame rate of NPY files that state "
                                               "none."),
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


def _csv(value: Optional[str]) -> Optional[list[str]]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@app.command()
def evaluate(
    dataset: List[Path] = typer.Option(..., help="Dataset directory (repeat for several)."),
    protocol: Optional[str] = typer.Option(None, help="kfold (default), group (leave one "
                                           "action out) or cross-dataset."),
    actions: Optional[str] = typer.Option(None, help="Only these actions, comma-separated."),
    emotions: Optional[str] = typer.Option(None, help="Only these emotions, comma-separated."),
    datasets: Optional[str] = typer.Option(None, help="Only clips of these dataset names."),
    folds: int = typer.Option(5, help="k of the k-fold protocol."),
    repeats: int = typer.Option(5, help="Repeats (seeds) of the k-fold protocol."),
    seed: int = typer.Option(0, help="First seed (of the folds and of eai's classifier)."),
    label: str = typer.Option("emotion", help="emotion (mapped emotions) or raw (each "
                              "dataset's own labels, e.g. all Bandai-Namco styles)."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Folder for results.json "
                                       "and confusion-matrix PNGs (default: eval-PROTOCOL)."),
    tokenizer: Optional[Path] = typer.Option(None, help="Take eai's classifier configuration "
                                             "from this trained tokenizer (refitted per fold)."),
    model: Optional[Path] = typer.Option(None, help="Evaluate this EAI-LLM model directory's "
                                         "own answers on a split instead (results in "
                                         "MODEL/eval/)."),
    split: str = typer.Option("test", help="--model: split of DATASET/splits.json."),
    split_file: Optional[Path] = typer.Option(None, help="--model: another splits.json."),
    curated: Optional[Path] = typer.Option(None, help="--model: curated pairs JSONL whose "
                                           "explanations are ROUGE-L references."),
    compare: Optional[Path] = typer.Option(None, help="--model: evaluate this model too and "
                                           "print both side by side."),
    backend: str = typer.Option("transformers", help="--model: transformers or openai."),
    base_url: Optional[str] = typer.Option(None, help="--model: server URL for --backend "
                                           "openai."),
    mode: str = typer.Option("model", help="--model: model (the LM's own label), cold-start "
                             "(the tokenizer's classifier labels) or auto."),
    limit: Optional[int] = typer.Option(None, help="--model: only the first N labelled clips."),
    batch_size: int = typer.Option(32, help="--model: clips per drafting batch."),
    max_new_tokens: int = typer.Option(160, help="--model: longest answer, in tokens."),
    device: Optional[str] = typer.Option(None, help="--model: torch device, e.g. cuda."),
    threads: Optional[int] = typer.Option(None, help="--model: torch CPU threads (on a busy "
                                          "CPU, fewer threads than cores can be faster)."),
) -> None:
    """Score emotion recognition: baselines and eai's classifier under a CV protocol, or with
    --model an EAI-LLM model's own answers on a held-out split."""
    from rich.progress import Progress

    if threads:
        import torch

        torch.set_num_threads(threads)
    if model is not None:
        from eai.cli_eval import run_model_evaluation

        if protocol is not None or out is not None:
            _fail("--protocol and -o are for the cross-validation evaluation; --model scores "
                  "the model's answers on --split and writes to MODEL/eval/")
        run_model_evaluation(model, dataset, split, split_file, curated, compare, backend,
                             base_url, mode, limit, batch_size, max_new_tokens, device)
        return
    if compare is not None or curated is not None:
        _fail("--compare and --curated need --model")
    protocol = protocol or "kfold"

    from eai.toolkit.baselines import DescriptorFeatures, DescriptorLogReg, MajorityClass
    from eai.toolkit.classifier import ClassifierConfig, MGSTClassifier
    from eai.toolkit.eval_report import (
        confusion_table,
        plot_confusion,
        results_table,
        write_results,
    )
    from eai.toolkit.evaluation import load_labelled_clips, make_splits, run_protocol

    try:
        data = load_labelled_clips([str(d) for d in dataset], _csv(actions), _csv(emotions),
                                   _csv(datasets), label=label)
        splits = make_splits(protocol, data, folds, repeats, seed)
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))
    mgst_config = ClassifierConfig(seed=seed)
    if tokenizer is not None:
        from eai.toolkit.classifier import load_classifier
        from eai.toolkit.tokenizer.emotion import CLASSIFIER_DIR

        try:  # only the configuration: the classifier is refitted inside every split
            mgst_config = load_classifier(tokenizer / CLASSIFIER_DIR).config
        except (FileNotFoundError, ValueError) as e:
            _fail(f"{tokenizer}: no emotion classifier to take the configuration from ({e})")
    features = DescriptorFeatures()
    methods = [MajorityClass(), DescriptorLogReg(features), MGSTClassifier(mgst_config)]
    console.print(f"{len(data.clips)} clips, {len(data.classes)} "
                  f"{'emotions' if label == 'emotion' else 'labels'} "
                  f"({', '.join(data.classes)}), {len(splits)} train/test splits")
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("evaluating", total=len(splits) * len(methods))
        results = run_protocol(data.clips, data.labels, data.classes, splits, methods,
                               on_step=lambda m, s: progress.update(
                                   task, advance=1, description=f"{m} {s.unit}"))
    out = out or Path(f"eval-{protocol}")
    out.mkdir(parents=True, exist_ok=True)
    for r in results:
        console.print(confusion_table(r))
        plot_confusion(r, out / f"confusion-{r.name.replace('+', '-')}.png", f"({protocol})")
    write_results(out / "results.json", results, {
        "protocol": protocol, "datasets": [str(d) for d in dataset], "actions": _csv(actions),
        "emotions": data.classes, "clips": len(data.clips), "folds": folds, "repeats": repeats,
        "seed": seed, "splits": len(splits), "label": label,
        "mgst": {"config": methods[-1].config.to_dict(), "last_fold": methods[-1].info}})
    console.print(results_table(results, protocol))
    console.print(f"results and confusion matrices in {out}/")
    for r in results:
        console.print(r.summary_line(), highlight=False)


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
def dataset_info(
    path: Path = typer.Argument(..., help="Dataset directory."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also write an overview PNG here "
                                        "(clips per emotion, durations, joint availability)."),
) -> None:
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
    if plot is not None:
        from eai.toolkit.plots import plot_dataset_overview

        try:
            console.print(f"wrote {plot_dataset_overview(path, plot)}")
        except (OSError, ValueError) as e:
            _fail(str(e))


@dataset_app.command("show")
def dataset_show(
    path: Path = typer.Argument(..., help="Dataset directory."),
    clip_id: str = typer.Argument(..., help="Clip id (a unique end of it, e.g. the file stem, "
                                  "will do)."),
    out: Path = typer.Option(..., "-o", "--out", help="An .mp4 or .gif animation, or a .png "
                             "filmstrip."),
    fps: Optional[float] = typer.Option(None, help="Animation frame rate (default: the clip's)."),
    poses: int = typer.Option(8, "--poses", help="Poses in a .png filmstrip."),
) -> None:
    """Draw one clip as a stick figure (front and side views)."""
    from eai.toolkit.dataset import load_clip
    from eai.toolkit.render import plot_filmstrip, write_animation

    suffix = out.suffix.lower()
    if suffix not in (".mp4", ".gif", ".png"):
        _fail(f"{out}: the output must end in .mp4, .gif (animation) or .png (filmstrip)")
    try:
        clip = load_clip(path, clip_id)
        if suffix == ".png":
            plot_filmstrip(clip, out, n=poses)
        else:
            write_animation(clip, out, fps=fps)
    except (OSError, ValueError) as e:
        _fail(str(e))
    console.print(f"wrote {out} ({clip.clip_id}, {clip.duration_s:.1f} s)")


@dataset_app.command("split")
def dataset_split(
    dataset: Path = typer.Argument(..., help="Unified dataset directory."),
    test_fraction: float = typer.Option(0.3, help="Share of the labelled clips held out."),
    group_by: Optional[str] = typer.Option(None, help="Keep whole groups on one side: action "
                                           "or subject."),
    seed: int = typer.Option(0, help="Seed of the split."),
    force: bool = typer.Option(False, help="Replace an existing splits.json."),
) -> None:
    """Write DATASET/splits.json: a fixed train/test split, stratified by emotion."""
    from eai.toolkit.splits import SplitError, write_splits

    try:
        doc = write_splits(dataset, test_fraction, group_by, seed, force)
    except (SplitError, FileNotFoundError, ValueError) as e:
        _fail(str(e))
    counts = ", ".join(f"{k} {v}" for k, v in doc["counts"].items())
    console.print(f"{dataset / 'splits.json'}: {counts} clips"
                  f"{f', grouped by {group_by}' if group_by else ''}", highlight=False)


@app.command("profiles")
def list_profiles(
    skeleton_plot: Optional[Path] = typer.Option(None, "--skeleton-plot", help="Also draw the "
                                                 "canonical skeleton (joints, indices) as PNG."),
) -> None:
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
    if skeleton_plot is not None:
        from eai.toolkit.plots import plot_canonical_skeleton

        console.print(f"wrote {plot_canonical_skeleton(skeleton_plot)}")


@tokenizer_app.command("train")
def tokenizer_train(
    datasets: List[Path] = typer.Argument(..., help="Unified dataset directories."),
    out: Path = typer.Option(..., "-o", "--out", help="Tokenizer directory to write."),
    steps: Optional[int] = typer.Option(None, help="Optimiser steps."),
    seed: Optional[int] = typer.Option(None, help="Seed of the split, crops and weights."),
    hidden: Optional[int] = typer.Option(None, help="Channels per body part."),
    levels: Optional[str] = typer.Option(None, help="FSQ levels, e.g. 8,8,8 (512 codes)."),
    batch_size: Optional[int] = typer.Option(None, help="Crops per step."),
    crop_frames: Optional[int] = typer.Option(None, help="Frames per training crop."),
    lr: Optional[float] = typer.Option(None, help="Peak learning rate."),
    held_out: Optional[float] = typer.Option(None, help="Fraction of clips held out."),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (default 1; 0: "
                                          "torch's choice)."),
    split: Optional[str] = typer.Option(None, help="Only this split of each dataset's "
                                        "splits.json (e.g. train: the evaluation clips stay "
                                        "unseen)."),
) -> None:
    """Train the spatio-temporal tokenizer; prints MPJPE and codebook usage."""
    from eai.toolkit.tokenizer import TokenizerConfig, train_tokenizer

    given = {"steps": steps, "seed": seed, "hidden": hidden, "batch_size": batch_size,
             "crop_frames": crop_frames, "lr": lr, "held_out_fraction": held_out,
             "threads": threads, "levels": _csv(levels)}
    try:
        config = TokenizerConfig(**{k: v for k, v in given.items() if v is not None})
        report = train_tokenizer([str(d) for d in datasets], out, config, split=split)
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))
    console.print(f"{report.summary()}; {report.train_seconds:.0f} s", highlight=False,
                  soft_wrap=True)
    console.print(f"tokenizer written to {out}/ (tokenizer.safetensors, tokenizer.json)")
    emotion = json.loads((out / "tokenizer.json").read_text(encoding="utf-8")).get("emotion")
    if emotion and emotion.get("trained") is False:  # said now, not at the first cold start
        console.print(f"[yellow]warning:[/yellow] no emotion classifier: {emotion['reason']} "
                      f"(cold-start drafting takes its labels from it)", highlight=False,
                      soft_wrap=True)


@tokenizer_app.command("encode")
def tokenizer_encode(
    dataset: Path = typer.Argument(..., help="Unified dataset directory."),
    tokenizer: Path = typer.Option(..., help="Tokenizer directory."),
    clip_ids: Optional[str] = typer.Option(None, help="Only these clip ids, comma-separated."),
    limit: Optional[int] = typer.Option(None, help="At most this many clips."),
    no_dataset_tag: bool = typer.Option(False, help="Leave out the <ds_...> token."),
    no_semantic: bool = typer.Option(False, help="Leave out the <semantic> ... </semantic> "
                                     "block of descriptor-level tokens."),
) -> None:
    """Print each clip's tokens as text (clip id, a tab, the tokens)."""
    from itertools import islice

    from eai.toolkit.dataset import iter_clips
    from eai.toolkit.tokenizer import load_tokenizer

    try:
        tok = load_tokenizer(tokenizer)
        clips = list(islice(iter_clips(dataset, clip_ids=_csv(clip_ids)), limit))
        texts = [tok.codes_text(c, None if no_dataset_tag else clip.dataset,
                                semantic=None if no_semantic or tok.levels is None
                                else tok.semantic_tokens(clip))
                 for clip, c in zip(clips, tok.encode_many(clips))]
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))
    if not clips:
        _fail(f"{dataset}: no clips matched")
    for clip, text in zip(clips, texts):
        typer.echo(f"{clip.clip_id}\t{text}")


@tokenizer_app.command("report")
def tokenizer_report(
    tokenizer: Path = typer.Argument(..., help="Tokenizer directory."),
    plot: Optional[Path] = typer.Option(None, help="Write a codebook-usage histogram PNG."),
    dataset: Optional[Path] = typer.Option(None, help="Recompute usage and MPJPE on this "
                                           "dataset (all its clips)."),
) -> None:
    """Print MPJPE, perplexity and used/dead codes; optionally plot codebook usage."""
    from eai.toolkit.tokenizer import load_tokenizer
    from eai.toolkit.tokenizer.report import part_table, plot_usage, report_lines, usage_on_dataset

    try:
        tok = load_tokenizer(tokenizer)
        usage, rec = usage_on_dataset(tok, dataset) if dataset else (None, None)
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))
    for line in report_lines(tok.meta, usage, rec, f"all clips of {dataset}" if dataset else ""):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(part_table(tok.meta, usage, rec))
    if plot:
        plot_usage(usage or tok.meta["usage_train"], plot,
                   f"{dataset.name}:" if dataset else "training clips:")
        console.print(f"codebook-usage plot written to {plot}")


# -- eai model: EAI-LLM model directories (docs/model.md) -----------------------------------
model_app = typer.Typer(help="Make and inspect EAI-LLM model directories.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("init")
def model_init(
    out: Path = typer.Option(..., "-o", "--out", help="Model directory to write."),
    tokenizer: Path = typer.Option(..., help="Skeleton tokenizer directory (eai tokenizer "
                                   "train)."),
    base: Optional[str] = typer.Option(None, help="Base causal LM: a local Hugging Face model "
                                       "directory, a hub id, or smollm2-135m-instruct "
                                       "(default, offline)."),
    labels: Optional[str] = typer.Option(None, help="Label set, comma-separated (default: the "
                                         "emotions of the tokenizer's datasets)."),
    prompt_template: Optional[str] = typer.Option(None, help="Prompt template id (default: "
                                                  "emotion_explain_v2)."),
    name: Optional[str] = typer.Option(None, help="Model name in model_version (default: the "
                                       "directory's name)."),
    force: bool = typer.Option(False, help="Replace an existing model directory."),
) -> None:
    """Build a model directory: base LM + skeleton tokens + skeleton tokenizer + eai.json."""
    import time

    from eai.toolkit.model import ModelError, init_model
    from eai.toolkit.model.init import DEFAULT_PROMPT_TEMPLATE

    t0 = time.perf_counter()
    try:
        info = init_model(out, tokenizer, base=base, label_set=labels,
                          prompt_template=prompt_template or DEFAULT_PROMPT_TEMPLATE, name=name,
                          force=force)
    except (ModelError, OSError, ValueError) as e:
        _fail(str(e))
    a = info.added_tokens
    console.print(f"model {info.model_version} written to {out} in "
                  f"{time.perf_counter() - t0:.1f} s: base {info.base['name']}, "
                  f"{a['count']} tokens added (ids {a['first_id']}..{a['last_id']}), labels "
                  f"{','.join(info.label_set)} ({info.label_source})", highlight=False,
                  soft_wrap=True)


@model_app.command("info")
def model_info(
    model_dir: Path = typer.Argument(..., help="Model directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole eai.json."),
) -> None:
    """Print a model directory's eai.json essentials."""
    import json

    from eai.toolkit.model import ModelError, read_info

    try:
        info = read_info(model_dir)
    except ModelError as e:
        _fail(str(e))
    if as_json:
        console.print_json(json.dumps(info.to_dict()))
        return
    a, t = info.added_tokens, info.tokenizer
    rows = [("model_version", info.model_version),
            ("parent_version", info.parent_version or "-"),
            ("base", f"{info.base.get('name')} ({info.base.get('source')})"),
            ("skeleton tokenizer", (f"{t.get('kind')}, {t.get('num_codes')} codes, datasets "
                                    f"{','.join(t.get('dataset_names') or []) or '-'}")),
            ("labels", f"{','.join(info.label_set)} ({info.label_source})"),
            ("prompt template", info.prompt_template),
            ("vocabulary", (f"{info.vocab_size} ({a['count']} added: ids {a['first_id']}.."
                            f"{a['last_id']})")),
            ("weights", f"{info.dtype}, tied embeddings: {info.tied_embeddings}"),
            ("created", f"{info.created_at} by eai {info.eai_version}")]
    for k, v in rows:
        console.print(f"{k + ':':20}{v}", highlight=False, soft_wrap=True)



# Commands that live in their own modules (cli.py stays short).
from eai.cli_demo import register as _register_demo  # noqa: E402
from eai.cli_draft import register as _register_draft  # noqa: E402
from eai.cli_finetune import register as _register_finetune  # noqa: E402
from eai.cli_review import review_app  # noqa: E402
from eai.cli_serve import register as _register_serve  # noqa: E402

app.add_typer(review_app, name="review")
_register_demo(app)
_register_draft(app)
_register_finetune(app)
_register_serve(app)

if __name__ == "__main__":  # pragma: no cover - `python -m eai.cli` (the tests use it)
    app()
