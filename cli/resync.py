"""`gradesync resync plan | run | approve`: see the queue, send it (a `resync` flow run), approve supersedes."""
from __future__ import annotations

from typing import Optional

import typer

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.common import make_console, quiet_prefect_defaults, root_config
from cli.errors import CliError

app = typer.Typer(help="Plan, approve and run resyncs of missing or wrong grades.", no_args_is_help=True,
                  add_completion=False)
console = make_console()
err_console = make_console(stderr=True)
EXIT_OK, EXIT_FAILED = 0, 1

CONFIG_HELP = "gradesync.toml path (default: $GRADESYNC_CONFIG or ./gradesync.toml)."

# What each outcome of a resync attempt means, for the summary table (unknown outcomes are shown as is).
OUTCOME_WORDS = {
    "verified": "sent; the LMS shows the score",
    "verified_on_recheck": "sent earlier; the LMS now shows the score",
    "already_in_lms": "already in the LMS; nothing sent",
    "sent": "accepted, but the LMS does not show it yet; re-checked by the next run",
    "failed:accepted_not_shown": "accepted but never shown: a gradebook override or lock keeps another grade",
    "failed:max_attempts": "given up after the maximum number of attempts",
    "held:manual_grade": "held: a person graded it since the audit; needs approval",
    "skipped": "not sent: the course could not be reached in this run",
    "claim_lost": "taken over by another worker",
}


def outcome_words(outcome: str) -> str:
    """An attempt outcome in words ("refused:item_inactive" → "refused by the LMS: item inactive")."""
    if outcome in OUTCOME_WORDS:
        return OUTCOME_WORDS[outcome]
    kind, _, detail = outcome.partition(":")
    if kind in ("refused", "failed") and detail:
        return f"{'refused by the LMS' if kind == 'refused' else 'failed'}: {detail.replace('_', ' ')}"
    return outcome


def _database(config: str | None) -> str:
    from gradesync.settings import load_settings
    from models import upgrade_database

    settings = load_settings(config)
    upgrade_database(settings.database.url)
    return settings.database.url


def _when(t) -> str:
    return t.strftime("%-d %b %Y %H:%M UTC") if t else "—"


@app.command()
def plan(
    ctx: typer.Context,
    platform: Optional[list[str]] = typer.Option(None, "--platform", help="Only this platform (repeatable)."),
    config: Optional[str] = typer.Option(None, "--config", help=CONFIG_HELP),
) -> None:
    """Show the open resync tasks by state, platform and category, and what waits for approval: what an
    approval would overwrite (the LMS score and since when), the tool's score, and why."""
    config = root_config(ctx, config)
    from gradesync.resync.plan import awaiting_approval, open_queue

    url = _database(config)
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
        w = Table(title="waiting for approval — approving overwrites the LMS score with the tool's "
                        "(gradesync resync approve FINDING_ID --by NAME)", title_justify="left")
        w.add_column("finding", justify="right")
        for col in ("learner", "course / activity"):
            w.add_column(col, overflow="fold")
        w.add_column("LMS now (overwritten)", justify="right")
        w.add_column("since")
        w.add_column("tool score", justify="right")
        w.add_column("why", overflow="fold")
        for r in waiting:
            w.add_row(str(r.finding_id or "—"), escape(r.learner or r.lms_user_id),
                      escape(" / ".join(x for x in (r.course or f"{r.platform}/{r.context_id}", r.activity) if x)),
                      r.lms_score, _when(r.lms_since), r.tool_score, escape(r.reason))
        console.print(w)


def print_resync_summary(outcome: dict, database_url: str | None = None, started=None,
                         platforms: list[str] | None = None, out: Console | None = None) -> None:
    """The resync run as people read it: a table of outcomes in words, then one line per score the
    platform accepted but does not show, per unreachable course and per skipped platform."""
    out = out or console
    t = Table(title=f"resync run {outcome['run_id']}", title_justify="left")
    t.add_column("outcome")
    t.add_column("meaning", overflow="fold")
    t.add_column("tasks", justify="right")
    for k, n in outcome["outcomes"].items():
        t.add_row(escape(k), escape(outcome_words(k)), str(n))
    if not outcome["outcomes"]:
        t.add_row("—", "nothing was due", "0")
    out.print(t)
    out.print(f"{outcome['claimed']} task(s) claimed, {outcome['sends']} score POST(s), "
              f"{outcome['verified']} verified in the LMS.")
    if database_url is not None and started is not None:
        from gradesync.resync.plan import accepted_not_shown

        for r in accepted_not_shown(database_url, started, platforms):
            who = r.learner or r.lms_user_id
            out.print(f"[yellow]accepted but not shown[/yellow] {escape(who)} ({escape(r.platform)}/"
                      f"{escape(r.context_id)}, task {r.task_id}): the platform accepted {r.tool_score} but the "
                      f"LMS does not show it — an override or lock in the gradebook may keep another grade; "
                      + ("the next run re-checks it." if r.state == "sent" else "clear it in the LMS."),
                      highlight=False, soft_wrap=True)
    for c in outcome["unverified_courses"]:
        out.print(f"[yellow]could not reach[/yellow] {escape(c['platform'])}/{escape(c['context_id'])}: "
                  f"{escape(' '.join(c['reason'].split())[:200])}", highlight=False, soft_wrap=True)
    for p, why in outcome["platform_errors"].items():
        out.print(f"[yellow]platform skipped[/yellow] {escape(p)}: {escape(' '.join(why.split())[:200])}",
                  highlight=False, soft_wrap=True)


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
    import asyncio

    from cli.errors import route_library_logs_to_file
    from gradesync.settings import load_settings
    import models as m

    settings = load_settings(config)
    for name in platform or []:
        settings.platform(name)
    url = _database(config)
    quiet_prefect_defaults()
    from flows.resync import resync_pending

    route_library_logs_to_file()
    started = m.utcnow()
    outcome = asyncio.run(resync_pending(platforms=platform, limit=limit, config=config, worker=worker,
                                         reclaim_after_s=reclaim_after))
    print_resync_summary(outcome, url, started, platform)


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
        raise CliError("give FINDING_ID... or --all-conflicts --course C")
    if all_conflicts and not course:
        raise CliError("--all-conflicts needs --course C")
    if course and not all_conflicts:
        raise CliError("--course goes with --all-conflicts")
    if not by.strip():
        raise CliError("--by must name who approves")
    url = _database(config)
    result = approve_tasks(url, by.strip(), finding_ids or [], course=course if all_conflicts else None)
    for p in result.problems:
        err_console.print(f"[yellow]skipped:[/yellow] {escape(p)}", highlight=False)
    console.print(f"{len(result.approved)} task(s) approved by {escape(by.strip())}"
                  + (f", {len(result.already)} already approved" if result.already else "")
                  + ("; `gradesync resync run` sends them." if result.approved else "."), highlight=False)
    if not result.approved and not result.already:
        raise typer.Exit(EXIT_FAILED)
