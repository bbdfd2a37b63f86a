"""`eai demo`: the whole loop up to human review, as the same eai commands a user would type.

The demo is a plan of ordinary eai commands (each printed before it runs, so every step can be
re-run alone, with the same arguments) executed in this process. A step whose output is
already complete is skipped, so an interrupted or failed demo resumes where it stopped:
conversion, split, tokenizer and model are judged by the files they write last; drafting and
pushing are resumable and idempotent themselves and always run (they do nothing twice).
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

DEMO_PROJECT = "eai demo"
# The demo's tokenizer trains for fewer steps than `eai tokenizer train`'s default (2,000):
# enough for usable tokens on a small set, a minute instead of five on two cores.
DEMO_TOKENIZER_STEPS = 400


@dataclass
class Step:
    """One eai command of the demo and how to tell that its output is already complete."""

    title: str
    argv: list[str]
    done: Callable[[], bool] = field(default=lambda: False)

    @property
    def command(self) -> str:
        return "eai " + " ".join(shlex.quote(a) for a in self.argv)


@dataclass
class DemoLayout:
    """Where the demo keeps everything: one folder the user can look into (or delete)."""

    work: Path

    raw = property(lambda self: self.work / "raw")
    dataset = property(lambda self: self.work / "dataset")
    tokenizer = property(lambda self: self.work / "tok")
    model = property(lambda self: self.work / "m0")
    drafts = property(lambda self: self.work / "drafts.jsonl")
    curated = property(lambda self: self.work / "curated.jsonl")
    finetuned = property(lambda self: self.work / "m1")


def is_dataset(path: Path) -> bool:
    """A unified dataset written by `eai convert` (its manifest is the last file written)."""
    return (path / "manifest.json").is_file()


def dataset_dir(layout: DemoLayout, data: Optional[Path]) -> Path:
    """The dataset the demo works on: `data` when it is a converted dataset, else its own."""
    return data if data is not None and is_dataset(data) else layout.dataset


def plan(layout: DemoLayout, data: Optional[Path] = None, *, limit: Optional[int] = None,
         tokenizer_steps: int = DEMO_TOKENIZER_STEPS, base: Optional[str] = None,
         project: str = DEMO_PROJECT, threads: Optional[int] = None) -> list[Step]:
    """The demo's commands. `data`: the user's motion files (converted) or an existing
    unified dataset (used as it is); None: the bundled synthetic sample set."""
    steps: list[Step] = []
    dataset = dataset_dir(layout, data)
    if dataset != data:
        raw = data
        if raw is None:
            raw = layout.raw
            steps.append(Step("sample data (synthetic)", ["sample-data", str(raw)],
                              lambda: (raw / "README.txt").is_file()))
        steps.append(Step("convert", ["convert", str(raw), "-o", str(dataset)],
                          lambda: is_dataset(dataset)))
    steps.append(Step("train/test split", ["dataset", "split", str(dataset)],
                      lambda: (dataset / "splits.json").is_file()))
    tok = layout.tokenizer
    steps.append(Step("skeleton tokenizer", [
        "tokenizer", "train", str(dataset), "--split", "train", "-o", str(tok),
        "--steps", str(tokenizer_steps)], lambda: (tok / "tokenizer.json").is_file()))
    model = layout.model
    init = ["model", "init", "-o", str(model), "--tokenizer", str(tok)]
    steps.append(Step("EAI-LLM model", init + (["--base", base] if base else []),
                      lambda: (model / "eai.json").is_file()))
    draft = ["draft-explanations", str(dataset), "--split", "train", "-o", str(layout.drafts),
             "--model", str(model)]
    draft += ["--limit", str(limit)] if limit else []
    draft += ["--threads", str(threads)] if threads else []
    steps.append(Step("draft explanations", draft))
    steps.append(Step("Label Studio", ["review", "server", "start"]))
    steps.append(Step("push for review", ["review", "push", str(layout.drafts), "--dataset",
                                          str(dataset), "--project", project]))
    return steps


def next_commands(layout: DemoLayout, dataset: Path, project: str = DEMO_PROJECT) -> list[str]:
    """What the user runs after reviewing: pull the curated pairs, then finetune on them."""
    q = shlex.quote
    return [f"eai review pull --project {q(project)} -o {q(str(layout.curated))}",
            f"eai finetune --model {q(str(layout.model))} --dataset {q(str(dataset))} "
            f"--curated {q(str(layout.curated))} -o {q(str(layout.finetuned))}"]


@dataclass
class StepResult:
    step: Step
    status: str  # "done", "skipped" or "failed"
    seconds: float


def run_steps(steps: list[Step], run_command: Callable[[list[str]], int],
              on_start: Callable[[int, Step], None] = lambda i, s: None,
              on_end: Callable[[int, StepResult], None] = lambda i, r: None) -> list[StepResult]:
    """Run the steps in order, skipping complete ones; stop at the first that fails (later
    steps read its output). `run_command(argv)` returns an exit code."""
    results = []
    for i, step in enumerate(steps):
        if step.done():
            results.append(StepResult(step, "skipped", 0.0))
            on_end(i, results[-1])
            continue
        on_start(i, step)
        t0 = time.perf_counter()
        code = run_command(step.argv)
        results.append(StepResult(step, "done" if code == 0 else "failed",
                                  time.perf_counter() - t0))
        on_end(i, results[-1])
        if code != 0:
            break
    return results
