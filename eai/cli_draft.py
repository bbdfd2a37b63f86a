"""`eai draft-explanations`: drafts of emotion + explanation for a dataset's clips."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def _clip_ids(value: Optional[str]) -> Optional[list[str]]:
    """"a,b,c" or "@file" (one id per line)."""
    if not value:
        return None
    if value.startswith("@"):
        lines = Path(value[1:]).read_text().splitlines()
        return [x.strip() for x in lines if x.strip() and not x.startswith("#")]
    return [x.strip() for x in value.split(",") if x.strip()]


def register(app: typer.Typer) -> None:
    @app.command("draft-explanations")
    def draft_explanations(
        dataset: Path = typer.Argument(..., help="Unified dataset directory."),
        out: Path = typer.Option(..., "-o", "--out", help="Drafts JSONL (appended; re-running "
                                 "resumes)."),
        model: Path = typer.Option(..., "--model", help="EAI-LLM model directory."),
        backend: str = typer.Option("transformers", help="transformers (in-process) or openai "
                                    "(a vLLM server, see eai serve)."),
        base_url: Optional[str] = typer.Option(None, help="Server URL for --backend openai, "
                                               "e.g. http://127.0.0.1:8000/v1."),
        mode: str = typer.Option("auto", help="model (the LM reads skeleton tokens), cold-start "
                                 "(the tokenizer's classifier labels, the LM explains) or auto "
                                 "(cold-start until the model was finetuned)."),
        split: Optional[str] = typer.Option(None, help="Only this split of DATASET/splits.json "
                                            "(train or test)."),
        split_file: Optional[Path] = typer.Option(None, help="Another splits.json."),
        clip_ids: Optional[str] = typer.Option(None, help="Only these clip ids: a,b,c or "
                                               "@file."),
        limit: Optional[int] = typer.Option(None, help="Only the first N selected clips."),
        batch_size: int = typer.Option(32, help="Clips per batch (and per flush)."),
        max_new_tokens: int = typer.Option(160, help="Longest answer, in tokens."),
        temperature: float = typer.Option(0.0, help="0: greedy (reproducible)."),
        seed: int = typer.Option(0, help="Sampling seed when temperature > 0."),
        concurrency: int = typer.Option(8, help="Concurrent requests (--backend openai)."),
        device: Optional[str] = typer.Option(None, help="torch device for transformers, e.g. "
                                             "cuda."),
        threads: Optional[int] = typer.Option(None, help="torch CPU threads for transformers "
                                              "(on a busy CPU, fewer threads than cores can "
                                              "be several times faster)."),
    ) -> None:
        """Draft an emotion, a confidence and an explanation for each clip, checked against
        its kinematic evidence."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        from eai.cli import _fail, console
        from eai.toolkit.drafting.backends import BackendError
        from eai.toolkit.drafting.draft import DraftFileError
        from eai.toolkit.drafting.prompts import PromptError
        from eai.toolkit.drafting.run import DraftConfig, DraftingError, run_drafting
        from eai.toolkit.model import ModelError
        from eai.toolkit.splits import SplitError

        if threads:
            import torch

            torch.set_num_threads(threads)
        cfg = DraftConfig(dataset=dataset, out=out, model_dir=model, backend=backend,
                          base_url=base_url, mode=mode, split=split, split_file=split_file,
                          clip_ids=_clip_ids(clip_ids), limit=limit, batch_size=batch_size,
                          max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                          concurrency=concurrency, device=device)
        columns = (TextColumn("drafting"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[note]}"), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("draft", total=None, note="loading the model")

            def on_progress(n: int, total: int, s) -> None:
                bar.update(task, advance=n, total=total,
                           note=f"{s.unparsed} unparsed, {len(s.failed)} failed")
            try:
                s = run_drafting(cfg, on_progress=on_progress)
            except (DraftingError, BackendError, ModelError, PromptError, SplitError,
                    DraftFileError, FileNotFoundError, ValueError) as e:
                _fail(str(e))
        for f in s.failed:
            console.print(f"[yellow]skipped[/yellow] {f['clip_id']}: {f['error']}",
                          highlight=False, soft_wrap=True)
        console.print(f"{s.drafted} drafted, {s.already_drafted} already drafted by "
                      f"{s.model_version}, {len(s.failed)} failed, {s.unparsed} without a "
                      f"label ({s.mode}, {s.seconds:.0f} s) -> {out}", highlight=False,
                      soft_wrap=True)
        if s.total_for_version:
            top = ", ".join(f"{k} {v}" for k, v in sorted(s.contradicted.items(),
                                                           key=lambda kv: -kv[1])[:3])
            console.print(f"faithful: {s.faithful}/{s.total_for_version} "
                          f"({s.faithful_share:.0%}) of this model's drafts"
                          f"{f'; most contradicted: {top}' if top else ''}", highlight=False)
        if s.failed and not s.drafted:
            raise typer.Exit(1)
