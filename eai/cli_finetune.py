"""`eai finetune`: curated pairs + training clips -> a new, finetuned EAI-LLM directory."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("finetune")
    def finetune(
        model: Path = typer.Option(..., "--model", help="EAI-LLM model directory to start "
                                   "from (never modified)."),
        dataset: Path = typer.Option(..., "--dataset", help="Unified dataset directory."),
        out: Path = typer.Option(..., "-o", "--out", help="New model directory."),
        curated: Optional[Path] = typer.Option(None, "--curated", help="Curated pairs JSONL "
                                               "(eai review pull)."),
        split_file: Optional[Path] = typer.Option(None, help="splits.json (default: "
                                                  "DATASET/splits.json)."),
        no_split: bool = typer.Option(False, "--no-split", help="Train on every clip (no "
                                      "evaluation split)."),
        epochs: float = typer.Option(3.0, help="Epochs of stage 2 (instruction)."),
        align_epochs: float = typer.Option(1.0, help="Epochs of stage 1 (alignment); 0 skips "
                                           "it."),
        max_steps: Optional[int] = typer.Option(None, help="Cap on each stage's steps."),
        lr: float = typer.Option(2e-4, help="Peak learning rate."),
        lora_r: int = typer.Option(16, help="LoRA rank (alpha = 2 x rank)."),
        batch_size: int = typer.Option(4, help="Examples per forward pass (per device)."),
        grad_accum: int = typer.Option(2, help="Forward passes per optimiser step."),
        max_length: int = typer.Option(1024, help="Longest example in tokens (longer ones are "
                                       "left out)."),
        save_steps: int = typer.Option(25, help="Checkpoint every N steps (for --resume)."),
        seed: int = typer.Option(0, help="Seed (data order, LoRA init, dropout)."),
        bf16: Optional[bool] = typer.Option(None, "--bf16/--no-bf16", help="bfloat16 autocast "
                                            "(default: where the GPU or CPU is fast at it)."),
        label_weight: float = typer.Option(0.0, help="0: one loss mean over all answer "
                                           "tokens; W > 0: the emotion label's tokens are "
                                           "averaged apart and weighted W (docs/finetune.md)."),
        align_view: str = typer.Option("full", help="What alignment examples show of the "
                                       "motion: full, or semantic (its <semantic> block alone: "
                                       "~40% of the tokens, more steps for the time)."),
        align_phrasing: str = typer.Option("prompt", help="Words of the alignment "
                                           "statements: prompt (its own), or varied (also "
                                           "the words explanations use, e.g. 'stooped', "
                                           "'arms open'; docs/finetune.md)."),
        counterfactuals: int = typer.Option(0, help="Per curated pair, up to N extra "
                                            "examples with one evidence line and the claim "
                                            "about it flipped, so claims follow the evidence, "
                                            "not the emotion (docs/finetune.md)."),
        claim_weight: float = typer.Option(0.0, help="0: off; W > 0: adds W x the mean loss "
                                           "on the tokens of claims that an evidence line "
                                           "of the prompt supports "
                                           "(docs/finetune.md)."),
        skip_unsupported_claims: bool = typer.Option(False, help="No loss on the tokens of "
                                                     "reviewed claims the prompt does not "
                                                     "support: contradicted, weak, or about "
                                                     "descriptors it does not show "
                                                     "(docs/finetune.md)."),
        gradient_checkpointing: bool = typer.Option(False, help="Recompute activations: less "
                                                    "memory, ~30% more time."),
        compile: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch."
                                               "compile each decoder layer (default: on CPU "
                                               "for runs of 20+ steps; ~1.5x faster steps after "
                                               "30-50 s of compiling)."),
        threads: Optional[int] = typer.Option(None, help="torch CPU threads (on a busy CPU, "
                                              "fewer threads than cores can be faster)."),
        resume: bool = typer.Option(False, help="Continue an interrupted run."),
        force: bool = typer.Option(False, help="Replace -o, or drop an interrupted run."),
    ) -> None:
        """Finetune EAI-LLM with LoRA: alignment on skeleton tokens, then instruction tuning on
        the curated pairs and label-only clips; merged into a new model directory."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        from eai.cli import _fail, console
        from eai.signals import stop_on_signals

        stop_on_signals()  # Ctrl-C, kill -INT / -TERM: "interrupted; ... --resume", also in jobs
        if threads:
            import torch

            torch.set_num_threads(threads)
        from eai.toolkit.finetune import FinetuneConfig, FinetuneError, run_finetune
        from eai.toolkit.finetune.run import is_main_process
        from eai.toolkit.model import ModelError
        from eai.toolkit.splits import SplitError

        columns = (TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(),
                   TimeRemainingColumn())
        # under torchrun / accelerate launch only rank 0 draws (the others would print empty bars)
        with Progress(*columns, console=console, transient=False,
                      disable=not is_main_process()) as bar:
            tasks: dict[str, int] = {}

            def on_progress(what: str, step: int, total: int, loss) -> None:
                if what == "data":
                    tasks["data"] = bar.add_task("examples", total=None, loss="-")
                    return
                if what != "step":
                    if "data" in tasks:
                        bar.update(tasks.pop("data"), visible=False)
                    tasks["current"] = bar.add_task(what, total=None, loss="-")
                    return
                bar.update(tasks["current"], completed=step, total=total,
                           loss="-" if loss is None else f"{loss:.3f}")
            try:
                cfg = FinetuneConfig(epochs=epochs, align_epochs=align_epochs,
                                     max_steps=max_steps, lr=lr, lora_r=lora_r,
                                     batch_size=batch_size, grad_accum=grad_accum,
                                     max_length=max_length, save_steps=save_steps, seed=seed,
                                     bf16=bf16, gradient_checkpointing=gradient_checkpointing,
                                     compile=compile,
                                     label_weight=label_weight, align_view=align_view,
                                     align_phrasing=align_phrasing,
                                     counterfactuals=counterfactuals,
                                     claim_weight=claim_weight,
                                     skip_unsupported_claims=skip_unsupported_claims)
                info = run_finetune(model, dataset, out, curated, cfg, split_file,
                                    not no_split, resume, force, on_progress)
            except (FinetuneError, ModelError, SplitError, FileNotFoundError, ValueError) as e:
                _fail(str(e))
            except KeyboardInterrupt:
                _fail("interrupted; continue with the same command and --resume", code=130)
        if info is None:  # a non-main process of accelerate launch / torchrun
            return
        m = info.metrics["finetune"]
        for w in m["warnings"]:
            console.print(f"[yellow]warning:[/yellow] {w}", highlight=False, soft_wrap=True)
        c = m["counts"]
        console.print(f"examples: {c.get('examples_describe', 0)} describe + "
                      f"{c.get('examples_label', 0)} label (alignment), "
                      f"{c.get('examples_curated', 0)} curated + {c.get('examples_label_only', 0)}"
                      f" label-only"
                      + (f" + {c['examples_counterfactual']} counterfactual"
                         if c.get("examples_counterfactual") else "")
                      + f" (instruction); {c['test_clips']} evaluation clips kept out",
                      highlight=False, soft_wrap=True)
        if "claim_tokens_weighted" in c:
            console.print(f"claim tokens: {c['claim_tokens_weighted']} weighted, "
                          f"{c['claim_tokens_skipped']} skipped (unsupported)", highlight=False)
        for stage in ("alignment", "instruction"):
            s = m.get(stage, {})
            if s.get("skipped"):
                console.print(f"{stage}: skipped")
            elif s:
                console.print(f"{stage}: {s['steps']} steps, loss {s['first_loss']:.3f} -> "
                              f"{s['final_loss']:.3f} ({s['seconds']:.0f} s)", highlight=False)
        console.print(f"model {info.model_version} (parent {info.parent_version}) written to "
                      f"{out}", highlight=False, soft_wrap=True)
