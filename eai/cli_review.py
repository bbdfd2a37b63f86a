"""`eai review server|push|pull|status`: the Label Studio review loop (docs/review.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

review_app = typer.Typer(help="Review drafted explanations in Label Studio.", no_args_is_help=True)
server_app = typer.Typer(help="The local Label Studio (bound to 127.0.0.1, data under "
                         "EAI_HOME).", no_args_is_help=True)
review_app.add_typer(server_app, name="server")
console = Console()
err = Console(stderr=True)

URL = typer.Option(None, "--url", help="A Label Studio you run yourself (default: "
                   "$LABEL_STUDIO_URL, else the local server). Its token comes from "
                   "$LABEL_STUDIO_API_KEY or --token-file.")
TOKEN_FILE = typer.Option(None, "--token-file", help="File holding the API token for --url.")
PROJECT = typer.Option(..., "--project", help="Label Studio project title.")


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def _errors():
    from eai.toolkit.drafting.draft import DraftFileError
    from eai.toolkit.review.errors import ReviewError

    return ReviewError, DraftFileError, FileNotFoundError, ValueError, OSError


def _connect(url: Optional[str], token_file: Optional[Path], media_root: Optional[Path] = None):
    from eai.toolkit.review.connection import connect

    try:
        return connect(url, token_file, files_root=media_root)
    except _errors() as e:
        _fail(str(e))


@server_app.command("start")
def server_start(
    port: Optional[int] = typer.Option(None, help="Port on 127.0.0.1 (default: the first free "
                                       "one from 8080)."),
    timeout: float = typer.Option(240.0, help="Seconds to wait for it to answer."),
) -> None:
    """Start the local Label Studio (first start about 40 s) and create the reviewer account."""
    from eai.toolkit.review import server
    from eai.toolkit.review.credentials import env_mismatch, load_credentials, mask

    paths = server.ServerPaths.default()
    try:
        with err.status("starting Label Studio (the first start migrates its database)"):
            info, started = server.start(port=port, timeout=timeout, paths=paths)
        creds = load_credentials(paths.credentials)
    except _errors() as e:
        _fail(str(e))
    ignored = env_mismatch(creds)
    if ignored:
        err.print(f"[yellow]warning:[/yellow] {', '.join(ignored)} ignored: the account exists "
                  f"already (see {paths.credentials})", highlight=False)
    console.print(f"Label Studio {'started' if started else 'already running'} at {info.url} "
                  f"(pid {info.pid})", highlight=False)
    console.print(f"  log in as {creds.username}; password and API token ({mask(creds.token)}) "
                  f"are in {paths.credentials}", highlight=False)
    console.print(f"  data: {paths.data}   log: {info.log}", highlight=False)


@server_app.command("stop")
def server_stop() -> None:
    """Stop the local Label Studio."""
    from eai.toolkit.review import server

    info = server.stop()
    console.print(f"stopped Label Studio at {info.url} (pid {info.pid})" if info
                  else "no local Label Studio was running", highlight=False)


@server_app.command("status")
def server_status() -> None:
    """Whether the local Label Studio runs, where, and as whom (exit 1 when it does not)."""
    from eai.toolkit.review import server

    paths = server.ServerPaths.default()
    info = server.running(paths)
    if info is None:
        console.print(f"not running (data under {paths.root})", highlight=False)
        raise typer.Exit(1)
    console.print(f"running at {info.url} (pid {info.pid}, user {info.username}, log "
                  f"{info.log})", highlight=False)


@review_app.command()
def push(
    drafts: Path = typer.Argument(..., help="drafts.jsonl from `eai draft-explanations`."),
    dataset: Path = typer.Option(..., "--dataset", help="The dataset the drafts were made from "
                                 "(the clips are rendered from it)."),
    project: str = PROJECT,
    url: Optional[str] = URL,
    token_file: Optional[Path] = TOKEN_FILE,
    media_root: Optional[Path] = typer.Option(None, help="With --url: that server's "
                                              "LOCAL_FILES_DOCUMENT_ROOT on this machine."),
) -> None:
    """Render the clips and import the drafts as tasks with predictions (idempotent)."""
    from eai.toolkit.review.push import push as run_push

    conn = _connect(url, token_file, media_root)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err, transient=True) as progress:
        bars: dict[str, int] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                bars[stage] = progress.add_task({"render": "rendering clips",
                                                 "import": "importing"}[stage], total=total)
            progress.update(bars[stage], completed=done, total=total)

        try:
            r = run_push(drafts, dataset, project, conn, on_progress=on_progress)
        except _errors() as e:
            progress.stop()
            _fail(str(e))
    for p in r.problems:
        err.print(f"[yellow]skipped:[/yellow] {p}", highlight=False)
    console.print(f"project {project!r} (id {r.project_id}{', new' if r.project_created else ''}) "
                  f"at {conn.url}/projects/{r.project_id}", highlight=False)
    console.print(f"  tasks created {r.tasks_created}, predictions added {r.predictions_added}, "
                  f"tasks updated {r.tasks_updated}, already there {r.unchanged}; "
                  f"clips rendered {r.rendered} (cached {r.render_cached})", highlight=False)


@review_app.command()
def pull(
    project: str = PROJECT,
    out: Path = typer.Option(..., "-o", "--out", help="Curated pairs JSONL (created or updated)."),
    all_: bool = typer.Option(False, "--all", help="Convert every annotation and rebuild the "
                              "file (default: only those new or changed since the last pull)."),
    url: Optional[str] = URL,
    token_file: Optional[Path] = TOKEN_FILE,
) -> None:
    """Write completed annotations as curated pairs (one line per annotation, ever)."""
    from eai.toolkit.review.pull import pull as run_pull

    conn = _connect(url, token_file)
    try:
        r = run_pull(project, out, conn, everything=all_)
    except _errors() as e:
        _fail(str(e))
    for w in r.warnings:
        err.print(f"[yellow]warning:[/yellow] {w}", highlight=False)
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r.outcomes.items())) or "none"
    console.print(f"{out}: {r.new} new, {r.updated} updated, {r.unchanged} unchanged "
                  f"({r.lines} lines); written now: {outcomes}", highlight=False)


@review_app.command()
def status(project: str = PROJECT, url: Optional[str] = URL,
           token_file: Optional[Path] = TOKEN_FILE) -> None:
    """Tasks, reviews, outcome shares and agreement between reviewers."""
    from eai.toolkit.review.curated import OUTCOMES
    from eai.toolkit.review.status import review_status

    conn = _connect(url, token_file)
    try:
        st = review_status(project, conn)
    except _errors() as e:
        _fail(str(e))
    table = Table(title=f"{st.project} (id {st.project_id}) at {st.url}", show_header=False)
    table.add_row("tasks", str(st.tasks))
    for mv, n in sorted(st.predictions.items()):
        table.add_row(f"  drafts of {mv}", str(n))
    table.add_row("reviewed tasks", f"{st.reviewed} ({st.reviewed / st.tasks:.0%})"
                  if st.tasks else "0")
    table.add_row("annotations", str(st.annotations))
    for o in OUTCOMES:
        share = st.share(o)
        table.add_row(f"  {o}", f"{st.outcomes[o]} ({share:.0%})" if share is not None else "0")
    table.add_row("tasks with 2+ reviewers", str(st.multi_reviewed))
    if st.agreement is not None:
        table.add_row("  emotion agreement", f"{st.agreement:.0%} (all agree on "
                      f"{st.full_agreement} of {st.multi_reviewed})")
    console.print(table)
