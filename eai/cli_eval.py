"""`eai evaluate --model`: the LLM branch of `eai evaluate` (docs/evaluate.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _evaluate_one(model: Path, label: str, **kw: Any) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from eai.cli import console
    from eai.toolkit.llm_eval import evaluate_model

    columns = (TextColumn(f"drafting with {label}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[note]}"))
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("draft", total=None, note="loading the model")

        def on_progress(n: int, total: int, s) -> None:
            bar.update(task, advance=n, total=total,
                       note=f"{s.already_drafted} already drafted, {s.unparsed} unparsed")

        return evaluate_model(model, on_progress=on_progress, **kw)


def _report(doc: dict[str, Any]) -> None:
    from eai.cli import console
    from eai.toolkit.llm_eval_report import confusion_table, metrics_table

    d = doc["drafting"]
    console.print(f"{doc['model_version']}: {d['drafted_now']} drafted now, "
                  f"{d['already_drafted']} reused from {d['drafts']}, {len(d['failed'])} "
                  f"could not be drafted", highlight=False, soft_wrap=True)
    for f in d["failed"]:
        console.print(f"[yellow]not drafted[/yellow] {f['clip_id']}: {f['error']}",
                      highlight=False, soft_wrap=True)
    if doc["labels_outside_model"]:
        console.print(f"[yellow]warning:[/yellow] true emotions outside the model's label set "
                      f"(always counted wrong): {', '.join(doc['labels_outside_model'])}",
                      highlight=False)
    if doc["curated"] and not doc["metrics"]["rouge_l"]["clips"]:
        console.print(f"[yellow]note:[/yellow] {doc['curated']['file']} has no reference for "
                      f"the evaluated clips; no ROUGE-L", highlight=False)
    console.print(metrics_table(doc))
    console.print(confusion_table(doc))
    console.print(f"results in {doc['paths']['results']}, confusion matrix in "
                  f"{doc['paths']['confusion']}", highlight=False, soft_wrap=True)


def run_model_evaluation(model: Path, datasets: list[Path], split: str,
                         split_file: Path | None, curated: Path | None,
                         compare: Path | None, backend: str, base_url: str | None,
                         mode: str, limit: int | None, batch_size: int, max_new_tokens: int,
                         device: str | None) -> None:
    """Evaluate MODEL (and --compare OTHER) on one dataset's split; print tables and lines."""
    from eai.cli import _fail, console
    from eai.toolkit.drafting.backends import BackendError
    from eai.toolkit.drafting.draft import DraftFileError
    from eai.toolkit.drafting.prompts import PromptError
    from eai.toolkit.drafting.run import DraftingError
    from eai.toolkit.llm_eval_report import compare_table, summary_line
    from eai.toolkit.model import ModelError
    from eai.toolkit.splits import SplitError

    if len(datasets) != 1:
        _fail(f"--model evaluates on exactly one --dataset (got {len(datasets)})")
    kw = {"dataset": datasets[0], "split": split, "split_file": split_file, "curated": curated,
          "backend": backend, "base_url": base_url, "mode": mode, "batch_size": batch_size,
          "max_new_tokens": max_new_tokens, "limit": limit, "device": device}
    docs = []
    for label, path in (("the model", model), ("the --compare model", compare)):
        if path is None:
            continue
        try:
            docs.append(_evaluate_one(path, label, **kw))
        except (DraftingError, BackendError, ModelError, PromptError, SplitError,
                DraftFileError, FileNotFoundError, ValueError) as e:
            _fail(f"{path}: {e}" if docs else str(e))
        _report(docs[-1])
    if len(docs) == 2:
        console.print(compare_table(*docs))
    for doc in docs:
        console.print(summary_line(doc), highlight=False, soft_wrap=True)
