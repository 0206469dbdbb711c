"""`gradesync audit` and `gradesync findings`: run the course-audit flow, read its findings."""
from __future__ import annotations

import asyncio
import csv
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gradesync.findings import CATEGORIES
from gradesync.settings import ConfigError, load_settings

console = Console()
err_console = Console(stderr=True)

EXIT_OK, EXIT_FAILED, EXIT_UNVERIFIED = 0, 1, 3


def root_config(ctx: typer.Context | None, config: str | None) -> str | None:
    """This command's --config, else the root's `gradesync --config PATH`, else None (env / ./gradesync.toml)."""
    if config:
        return config
    state = ctx.find_root().obj if ctx is not None else None
    root = getattr(state, "config", None)
    return str(root) if root else None


def quiet_prefect_defaults() -> None:
    """Prefect's own logging at WARNING unless the user chose otherwise; no telemetry attempts offline."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    # The temporary server needs 12–20 s on 2 cores (stack-notes A.1); its default 20 s limit is too tight.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


class RichProgress:
    """The progress sink shown while courses are extracted."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.task = None

    def start(self, total: int, description: str) -> None:
        self.task = self.progress.add_task(description, total=total)

    def advance(self, label: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, advance=1, description=f"extracting {label}")


def run_audit(config: str | None, platforms: list[str] | None, courses: list[str] | None,
              activities: list[str] | None, alerts: bool, *, show_progress: bool = True) -> dict:
    """Check config and database, then run the course-audit flow (a real Prefect flow run)."""
    from gradesync import progress
    from gradesync.audit.persist import open_database

    settings = load_settings(config)
    if not settings.platforms:
        raise ConfigError("no [[platforms]] configured: nothing to audit")
    open_database(settings.database.url)
    quiet_prefect_defaults()
    from flows.audit import course_audit

    if not show_progress:
        return asyncio.run(course_audit(platforms=platforms, courses=courses, activities=activities,
                                        alerts=alerts, config=config))
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:
        progress.install(RichProgress(bar))
        try:
            return asyncio.run(course_audit(platforms=platforms, courses=courses, activities=activities,
                                            alerts=alerts, config=config))
        finally:
            progress.install(None)


def one_line(e: BaseException) -> str:
    """An exception as one short line (driver errors span several)."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text[:300]}"


def print_summary(outcome: dict, out: Console = console) -> None:
    t = Table(title=f"audit run {outcome['run_id']} — {outcome['state']}")
    t.add_column("category")
    t.add_column("findings", justify="right")
    for c in CATEGORIES:
        if outcome["by_category"].get(c):
            t.add_row(c, str(outcome["by_category"][c]))
    t.add_row("[bold]total[/bold]", f"[bold]{outcome['findings']}[/bold]")
    out.print(t)
    out.print(f"{outcome['new']} new, {outcome['resolved']} resolved since the previous audit; "
              f"{outcome['unverified']} course(s) could not be audited.")
    out.print(f"Report: {outcome['report']}")


def audit(
    ctx: typer.Context,
    platform: Optional[list[str]] = typer.Option(None, "--platform", help="Audit only this platform (repeatable)."),
    course: Optional[list[str]] = typer.Option(None, "--course", help="Audit only this course context id, or PLATFORM/CONTEXT_ID (repeatable)."),
    activity: Optional[list[str]] = typer.Option(None, "--activity", help="Audit only links to this activity id (repeatable)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the run, course statuses and findings to this JSON file."),
    no_alerts: bool = typer.Option(False, "--no-alerts", help="Do not send Slack alerts (or print the digest)."),
    config: Optional[str] = typer.Option(None, "--config", help="gradesync.toml path (default: $GRADESYNC_CONFIG or ./gradesync.toml)."),
) -> None:
    """Audit grade sync now: extract from the LMS, validate, diagnose, report, alert.

    Exit codes: 0 the audit completed (findings are results, not errors); 3 it completed but some
    courses could not be audited (unverified); 1 it could not run."""
    config = root_config(ctx, config)
    try:
        outcome = run_audit(config, platform, course, activity, not no_alerts)
    except ConfigError as e:
        err_console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(EXIT_FAILED)
    except Exception as e:   # database unreachable, Prefect unavailable: one line, no traceback
        err_console.print(f"[red]error:[/red] audit could not run: {one_line(e)}")
        raise typer.Exit(EXIT_FAILED)
    print_summary(outcome)
    if json_path is not None:
        from gradesync.audit.export import export_run
        settings = load_settings(config)
        json_path.write_text(json.dumps(export_run(settings.database.url, outcome["run_id"]), indent=2, default=str))
        console.print(f"JSON: {json_path}")
    raise typer.Exit(EXIT_UNVERIFIED if outcome["unverified"] else EXIT_OK)


def findings(
    ctx: typer.Context,
    run: Optional[int] = typer.Option(None, "--run", help="Audit run id (default: the latest audit)."),
    category: Optional[str] = typer.Option(None, "--category", help="Only this category."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
    config: Optional[str] = typer.Option(None, "--config", help="gradesync.toml path."),
) -> None:
    """Show the findings of an audit run."""
    from gradesync.audit.export import export_run, latest_run_id
    from gradesync.audit.persist import open_database

    config = root_config(ctx, config)
    try:
        settings = load_settings(config)
        if category and category not in CATEGORIES:
            raise ConfigError(f"unknown category {category!r} (one of: {', '.join(CATEGORIES)})")
        if fmt not in ("table", "json", "csv"):
            raise ConfigError(f"unknown format {fmt!r} (table | json | csv)")
        url = open_database(settings.database.url)
        run_id = run or latest_run_id(url)
        if run_id is None:
            raise ConfigError("no audit run yet: run `gradesync audit` first")
        data = export_run(url, run_id, category=category)
    except (ConfigError, LookupError) as e:
        err_console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(EXIT_FAILED)
    except Exception as e:   # database unreachable: one line, no traceback
        err_console.print(f"[red]error:[/red] {one_line(e)}")
        raise typer.Exit(EXIT_FAILED)
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        return
    cols = ["id", "category", "platform", "context_id", "resource_link_id", "activity_id", "account_id",
            "lms_user_id", "tool_score", "tool_maximum", "lms_score", "lms_maximum", "action"]
    if fmt == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(cols + ["resync_state"])
        for f in data["findings"]:
            w.writerow([f[c] for c in cols] + [(f["resync"] or {}).get("state", "")])
        return
    t = Table(title=f"findings of run {run_id} ({data['state']})")
    for c in ("id", "category", "platform", "course", "link", "learner", "tool", "lms", "resync"):
        t.add_column(c)
    for f in data["findings"]:
        t.add_row(str(f["id"]), f["category"], f["platform"], f["context_id"], f["resource_link_id"] or "",
                  f["lms_user_id"] or "", _score(f["tool_score"], f["tool_maximum"]),
                  _score(f["lms_score"], f["lms_maximum"]), (f["resync"] or {}).get("state", ""))
    console.print(t)
    counts = Counter(f["category"] for f in data["findings"])
    console.print(", ".join(f"{c}: {counts[c]}" for c in CATEGORIES if counts[c]) or "no findings")


def _score(v, mx) -> str:
    return "" if v is None else f"{v:g}/{mx:g}" if mx else f"{v:g}"


audit_app = typer.Typer(add_completion=False)
audit_app.command("audit")(audit)
findings_app = typer.Typer(add_completion=False)
findings_app.command("findings")(findings)
