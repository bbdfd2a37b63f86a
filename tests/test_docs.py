"""The docs cannot rot: every command they show is run here, or (where it needs this very
set-up, GPUs or a cluster) parsed by eai's own command line. See tests/docs_blocks.py for the
fence conventions.

The pages run in one workspace, getting-started first (it builds demo/: the data, tokenizer,
model, drafts, a Label Studio project, curated pairs and a finetuned model), then the others
in alphabetical order, which use what it made. The commands run as a reader would type them:
`eai` from this environment, a private EAI_HOME, the repository's scripts/ at hand. About ten
minutes: real tokenizer training, drafting with SmolLM2, Label Studio and finetuning.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from docs_blocks import Block, blocks, eai_argv, shell_commands
from vllm_support import need_vllm

from eai.cli import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FIRST = ROOT / "docs" / "getting-started.md"
RUN_ORDER = [FIRST, *[p for p in PAGES if p != FIRST]]
LANGUAGES = {"", "text", "bash", "python", "json", "jsonl", "xml", "toml", "csv", "console"}
# Tools a `bash check` block may name that this machine need not have (GPUs, a cluster).
# typer may bundle its own click: take the classes it raises, not those of a `click` install.
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
ELSEWHERE = {"accelerate", "torchrun", "pip", "hf", "export", "ray", "spark-submit", "git", "cd",
             "nvidia-smi", "python"}


def all_blocks() -> list[Block]:
    return [b for page in PAGES for b in blocks(page)]


def parse_eai(args: list[str]) -> None:
    """Parse an eai command line down to its subcommand, as running it would (options, their
    types and required arguments), without running it."""
    command = typer.main.get_command(app)
    ctx = command.make_context("eai", list(args))
    while hasattr(command, "resolve_command"):  # a group: go down to the subcommand
        rest = [*ctx._protected_args, *ctx.args]
        name, command, rest = command.resolve_command(ctx, rest)
        ctx = command.make_context(name, rest, parent=ctx)


def test_every_fence_is_known_and_closed():
    for b in all_blocks():
        assert b.language in LANGUAGES, f"{b.where}: unknown fence language {b.language!r}"
        assert not b.check_only or b.language in ("bash", "python"), b.where


@pytest.mark.parametrize("block", [b for b in all_blocks() if b.check_only],
                         ids=lambda b: b.where)
def test_commands_that_cannot_run_here_still_parse(block: Block):
    if block.language == "python":
        compile(block.code, block.where, "exec")
        return
    for argv in shell_commands(block.code):
        args = eai_argv(argv)
        if args is not None:
            try:
                parse_eai(args)
            except ClickException as e:
                pytest.fail(f"{block.where}: `eai {' '.join(args)}`: {e.format_message()}")
        elif argv[0] in ("bash", ".", "source"):
            assert (ROOT / argv[1]).exists(), f"{block.where}: {argv[1]} does not exist"
        else:
            assert argv[0] in ELSEWHERE or shutil.which(argv[0]), f"{block.where}: {argv[0]}?"


PLACEHOLDER = re.compile(r"\b[A-Z][A-Z0-9_]{2,}\b|\[|\|")
COMMAND = re.compile(r"^(eai|python|bash|pip|accelerate|torchrun) ")


def test_commands_are_not_hidden_in_plain_blocks():
    """A plain block is a synopsis (with placeholders) or printed output; a command typed at
    column 0 without a placeholder in its block belongs in a bash block, where it is run."""
    for b in all_blocks():
        if b.language in ("", "text") and not PLACEHOLDER.search(b.code):
            typed = [line for line in b.code.splitlines() if COMMAND.match(line)]
            assert not typed, f"{b.where}: {typed[0]!r} belongs in a ```bash block"


@pytest.mark.parametrize("block", [b for b in all_blocks() if "\n$ eai " in "\n" + b.code],
                         ids=lambda b: b.where)
def test_commands_in_transcripts_parse(block: Block):
    for line in block.code.splitlines():
        if line.startswith("$ eai "):
            parse_eai(shell_commands(line[2:])[0][1:])


def test_the_parser_check_catches_a_wrong_option():
    with pytest.raises(ClickException):
        parse_eai(["convert", "x", "-o", "y", "--no-such-option"])
    with pytest.raises(ClickException):
        parse_eai(["review", "pull", "-o", "c.jsonl"])  # --project is required
    parse_eai(["review", "pull", "--project", "p", "-o", "c.jsonl"])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A reader's working folder: scripts/ at hand, its own EAI_HOME; Label Studio stopped at
    the end."""
    from review_support import need_label_studio

    need_label_studio()
    work = tmp_path_factory.mktemp("docs")
    (work / "scripts").symlink_to(ROOT / "scripts")
    env = {**os.environ, "EAI_HOME": str(work / "home"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for k in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"):
        env.pop(k, None)
    yield work, env
    subprocess.run(["eai", "review", "server", "stop"], cwd=work, env=env,
                   capture_output=True, timeout=120)


def run_block(block: Block, work: Path, env: dict) -> None:
    if block.language == "python":
        cmd = [sys.executable, "-c", block.code]
    else:
        cmd = ["bash", "-c", "set -euo pipefail\n" + block.code]
    r = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, (f"{block.where} failed (exit {r.returncode}):\n{block.code}\n"
                               f"--- stdout\n{r.stdout[-4000:]}\n--- stderr\n{r.stderr[-4000:]}")


def runnable_blocks(page: Path) -> list[Block]:
    return [b for b in blocks(page) if b.language in ("bash", "python") and not b.check_only]


RUNNABLE = [p for p in RUN_ORDER if runnable_blocks(p)]


@pytest.mark.slow
@pytest.mark.labelstudio
@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: p.name)
def test_page_runs(page: Path, workspace):
    work, env = workspace
    runnable = runnable_blocks(page)
    if any("VLLMServer" in b.code or "eai serve" in b.code for b in runnable):
        need_vllm()
    if page != FIRST and not (work / "demo" / "m1" / "eai.json").is_file():
        pytest.fail(f"{FIRST.name} did not finish: the other pages use what it builds")
    for block in runnable:
        run_block(block, work, env)
