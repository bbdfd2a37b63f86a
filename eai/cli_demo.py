"""`eai demo`: convert, tokenizer, model, drafts and a Label Studio ready for review, in one go."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from eai.toolkit.demo import DEMO_PROJECT, DEMO_TOKENIZER_STEPS

console = Console()


def _run_in_process(app: typer.Typer):
    """argv -> exit code, running the eai command in this process as if typed (sys.argv
    included: datasets record the command that made them)."""
    command = typer.main.get_command(app)

    def run(argv: list[str]) -> int:
        saved = sys.argv
        sys.argv = ["eai", *argv]
        try:  # standalone: usage errors are printed as on the command line, then SystemExit
            command.main(args=argv, prog_name="eai", standalone_mode=True)
            return 0
        except SystemExit as e:
            return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        finally:
            sys.argv = saved

    return run


def _summary(results) -> Table:
    table = Table(title="eai demo", title_justify="left")
    for name in ("step", "status", "seconds"):
        table.add_column(name)
    for r in results:
        table.add_row(r.step.title, r.status, f"{r.seconds:.0f}" if r.status != "skipped" else "")
    table.add_section()
    table.add_row("total", "", f"{sum(r.seconds for r in results):.0f}")
    return table


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        data: Optional[Path] = typer.Option(None, "--data", help="Your motion files (a folder, "
                                            "converted with default options) or a unified "
                                            "dataset; default: the synthetic sample set."),
        work: Path = typer.Option(Path("eai-demo"), "--work", help="Folder for everything the "
                                  "demo makes (re-running resumes in it)."),
        limit: Optional[int] = typer.Option(None, help="Draft only the first N training clips."),
        tokenizer_steps: int = typer.Option(DEMO_TOKENIZER_STEPS, help="Tokenizer training "
                                            "steps (`eai tokenizer train` defaults to 2000)."),
        base: Optional[str] = typer.Option(None, help="Base LM for `eai model init` (default: "
                                           "the offline SmolLM2-135M-Instruct)."),
        project: str = typer.Option(DEMO_PROJECT, help="Label Studio project title."),
        threads: Optional[int] = typer.Option(None, help="torch CPU threads for drafting."),
    ) -> None:
        """Run the loop up to human review: convert, split, tokenizer, model, drafts, Label
        Studio. Each step is an ordinary eai command (printed), skipped when already done."""
        from eai.toolkit.demo import DemoLayout, dataset_dir, next_commands, plan, run_steps
        from eai.toolkit.review.credentials import load_credentials
        from eai.toolkit.review.server import ServerPaths, running

        if data is not None and not data.exists():
            console.print(f"[red]error:[/red] --data {data}: no such file or folder",
                          highlight=False, soft_wrap=True)
            raise typer.Exit(2)
        layout = DemoLayout(work)
        steps = plan(layout, data, limit=limit, tokenizer_steps=tokenizer_steps, base=base,
                     project=project, threads=threads)

        def on_start(i: int, step) -> None:
            console.rule(f"[bold]{i + 1}/{len(steps)} {step.title}", align="left")
            console.print(f"$ {step.command}", highlight=False, markup=False, soft_wrap=True)

        def on_end(i: int, result) -> None:
            if result.status == "skipped":
                console.print(f"[dim]{i + 1}/{len(steps)} {result.step.title}: already done "
                              f"(skipped)[/dim]", highlight=False)

        results = run_steps(steps, _run_in_process(app), on_start, on_end)
        console.print()
        console.print(_summary(results))
        failed = [r for r in results if r.status == "failed"]
        if failed:
            console.print(f"[red]the step '{failed[0].step.title}' failed[/red] (see above). "
                          f"Fix it, then re-run `eai demo` with the same options (finished "
                          f"steps are skipped), or run that step alone:\n  "
                          f"{failed[0].step.command}", highlight=False)
            raise typer.Exit(1)
        paths = ServerPaths.default()
        info, creds = running(paths), load_credentials(paths.credentials)
        dataset = dataset_dir(layout, data)
        console.print(f"\n[bold green]Ready for review[/bold green] at {info.url}/projects/ "
                      f"(project {project!r})", highlight=False)
        console.print(f"  log in as {creds.username}; the password and the API token are in "
                      f"{paths.credentials} (mode 0600)", highlight=False, soft_wrap=True)
        console.print("  after reviewing, pull the curated pairs and finetune on them:",
                      highlight=False)
        for line in next_commands(layout, dataset, project):
            console.print(f"    {line}", highlight=False, markup=False, soft_wrap=True)
        console.print("  stop Label Studio with: eai review server stop", highlight=False)
