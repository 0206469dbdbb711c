"""`gradesync resync plan | run | approve`: see the queue, send it (a `resync` flow run), approve supersedes."""
from __future__ import annotations

import asyncio
from typing import Optional

import typer

from gradesync.cli_audit import root_config
from rich.console import Console
from rich.table import Table

from gradesync.settings import ConfigError, load_settings

app = typer.Typer(help="Plan, approve and run resyncs of missing or wrong grades.", no_args_is_help=True,
                  add_completion=False)
console = Console()
err_console = Console(stderr=True)
EXIT_OK, EXIT_FAILED = 0, 1

CONFIG_HELP = "gradesync.toml path (default: $GRADESYNC_CONFIG or ./gradesync.toml)."


def _database(config: str | None) -> str:
    from models import upgrade_database

    settings = load_settings(config)
    upgrade_database(settings.database.url)
    return settings.database.url


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(EXIT_FAILED)


@app.command()
def plan(
    ctx: typer.Context,
    platform: Optional[list[str]] = typer.Option(None, "--platform", help="Only this platform (repeatable)."),
    config: Optional[str] = typer.Option(None, "--config", help=CONFIG_HELP),
) -> None:
    """Show the open resync tasks by state, platform and category, and what waits for approval."""
    config = root_config(ctx, config)
    from gradesync.resync.plan import awaiting_approval, open_queue

    try:
        url = _database(config)
    except ConfigError as e:
        raise _fail(str(e))
    rows = open_queue(url, platform)
    t = Table(title="open resync tasks")
    for col in ("state", "platform", "category"):
        t.add_column(col)
    t.add_column("tasks", justify="right")
    for r in rows:
        t.add_row(r.state, r.platform, r.category, str(r.tasks))
    t.add_row("[bold]total[/bold]", "", "", f"[bold]{sum(r.tasks for r in rows)}[/bold]")
    console.print(t)
    waiting = awaiting_approval(url, platform)
    if waiting:
        w = Table(title="waiting for approval (gradesync resync approve FINDING_ID --by NAME)")
        for col in ("finding", "task", "platform", "course", "learner", "tool score", "why"):
            w.add_column(col)
        for r in waiting:
            w.add_row(str(r.finding_id or ""), str(r.task_id), r.platform, r.context_id, r.lms_user_id,
                      r.tool_score, r.reason)
        console.print(w)


@app.command()
def run(
    ctx: typer.Context,
    platform: Optional[list[str]] = typer.Option(None, "--platform", help="Only this platform (repeatable)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Send at most N tasks."),
    worker: Optional[str] = typer.Option(None, "--worker", help="Name recorded on the tasks this run claims."),
    reclaim_after: float = typer.Option(600.0, "--reclaim-after", min=0,
                                        help="Seconds after which another worker's unfinished claim is taken over."),
    config: Optional[str] = typer.Option(None, "--config", help=CONFIG_HELP),
) -> None:
    """Send the due tasks (a `resync` flow run): fresh timestamps, verified by reading the LMS back."""
    config = root_config(ctx, config)
    from gradesync.cli_audit import quiet_prefect_defaults

    try:
        settings = load_settings(config)
        for name in platform or []:
            settings.platform(name)
        _database(config)
        quiet_prefect_defaults()
        from flows.resync import resync_pending

        outcome = asyncio.run(resync_pending(platforms=platform, limit=limit, config=config, worker=worker,
                                             reclaim_after_s=reclaim_after))
    except ConfigError as e:
        raise _fail(str(e))
    except Exception as e:   # database unreachable, Prefect unavailable: one line, no traceback
        raise _fail(f"resync could not run: {type(e).__name__}: {str(e)[:300]}")
    t = Table(title=f"resync run {outcome['run_id']}")
    t.add_column("outcome")
    t.add_column("tasks", justify="right")
    for k, n in outcome["outcomes"].items():
        t.add_row(k, str(n))
    console.print(t)
    console.print(f"{outcome['claimed']} task(s) claimed, {outcome['sends']} score POST(s), "
                  f"{outcome['verified']} verified in the LMS.")
    for c in outcome["unverified_courses"]:
        console.print(f"[yellow]could not reach[/yellow] {c['platform']}/{c['context_id']}: {c['reason'][:200]}")
    for p, why in outcome["platform_errors"].items():
        console.print(f"[yellow]platform skipped[/yellow] {p}: {why[:200]}")


@app.command()
def approve(
    ctx: typer.Context,
    finding_ids: Optional[list[int]] = typer.Argument(
        None, help="Ids of findings whose LMS grade may be replaced: manual_grade_conflict, a grade the platform "
                   "keeps unless superseded (Canvas), or a send the platform accepted and did not apply."),
    all_conflicts: bool = typer.Option(False, "--all-conflicts", help="Every conflict waiting in --course."),
    course: Optional[str] = typer.Option(None, "--course", help="CONTEXT_ID or PLATFORM/CONTEXT_ID (with --all-conflicts)."),
    by: str = typer.Option(..., "--by", help="Who approves (recorded with the time)."),
    config: Optional[str] = typer.Option(None, "--config", help=CONFIG_HELP),
) -> None:
    """Approve overwriting instructors' manual grades with the tool's score (sent by the next run)."""
    config = root_config(ctx, config)
    from gradesync.resync.plan import approve as approve_tasks

    if not finding_ids and not all_conflicts:
        raise _fail("give FINDING_ID... or --all-conflicts --course C")
    if all_conflicts and not course:
        raise _fail("--all-conflicts needs --course C")
    if course and not all_conflicts:
        raise _fail("--course goes with --all-conflicts")
    if not by.strip():
        raise _fail("--by must name who approves")
    try:
        url = _database(config)
    except ConfigError as e:
        raise _fail(str(e))
    result = approve_tasks(url, by.strip(), finding_ids or [], course=course if all_conflicts else None)
    for p in result.problems:
        err_console.print(f"[yellow]skipped:[/yellow] {p}")
    console.print(f"{len(result.approved)} task(s) approved by {by.strip()}"
                  + (f", {len(result.already)} already approved" if result.already else "")
                  + ("; `gradesync resync run` sends them." if result.approved else "."))
    if not result.approved and not result.already:
        raise typer.Exit(EXIT_FAILED)
