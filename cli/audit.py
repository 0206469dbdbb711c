"""`gradesync audit` and `gradesync findings`: run the course-audit flow, read its findings."""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.common import make_console, quiet_prefect_defaults, root_config
from gradesync.console_text import wrap_lines
from gradesync.findings import CATEGORIES

console = make_console()
err_console = make_console(stderr=True)

EXIT_OK, EXIT_FAILED, EXIT_UNVERIFIED = 0, 1, 3


def _sqlite_file_missing(url: str) -> bool:
    """True when `url` is a file-based SQLite database whose file does not exist (yet)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return u.get_backend_name() == "sqlite" and bool(u.database) and u.database != ":memory:" \
        and not Path(u.database).exists()


def check_before_audit(config: str | None, platforms: list[str] | None, courses: list[str] | None,
                       activities: list[str] | None):
    """Everything that can be checked without Prefect, in a second: configuration, database, and a
    non-empty scope (an unknown platform, a course filter that matches nothing, nothing imported).
    Returns (settings, scope); raises ConfigError / EmptyScope with the reason."""
    from gradesync.audit.persist import open_database
    from gradesync.audit.scope_check import require_courses, service_url_problems
    from gradesync.settings import ConfigError, load_settings

    settings = load_settings(config)
    if not settings.platforms:
        raise ConfigError(f"{settings.source_path or 'gradesync.toml'}: no [[platforms]] configured: nothing to audit")
    for name in platforms or []:
        settings.platform(name)
    missing = _sqlite_file_missing(settings.database.url)
    open_database(settings.database.url)
    scope = require_courses(settings.database.url, settings, platforms, courses, activities,
                            database_was_missing=missing)
    problems = service_url_problems(scope, settings)
    for p in problems[:10]:
        err_console.print(f"[yellow]warning:[/yellow] {escape(p)}", highlight=False)
    if len(problems) > 10:
        err_console.print(f"[yellow]warning:[/yellow] … and {len(problems) - 10} more course URL(s) outside allowed_hosts")
    return settings, scope


def run_audit(config: str | None, platforms: list[str] | None, courses: list[str] | None,
              activities: list[str] | None, alerts: bool, *, show_progress: bool = True,
              warm: bool = False) -> dict:
    """Check config, database and scope (fast, before Prefect starts), then run the course-audit flow
    (a real Prefect flow run); its progress bar reads the run's course statuses from the database.
    With `warm`, a warm process of this caller (cli/warm.py) runs it when one is up; when none is, it
    runs here and one is started in the background for the next audit (unless GRADESYNC_WARM=off)."""
    from cli import warm_client

    settings, _ = check_before_audit(config, platforms, courses, activities)
    warm = warm and warm_client.enabled()
    request = dict(config=config, platforms=platforms, courses=courses, activities=activities, alerts=alerts)
    if warm:
        answer = _with_progress(settings, show_progress, lambda: _ask_warm(request))
        if answer is not None:
            return _outcome_of(answer)
    outcome = _with_progress(settings, show_progress, lambda: _audit_here(request))
    if warm and warm_client.holder_pid() is None:
        warm_client.start_in_background()
    return outcome


def _with_progress(settings, show_progress: bool, call):
    from cli.progress import RunProgressBar

    if not show_progress:
        return call()
    with RunProgressBar(settings.database.url, "course-audit", err_console):
        return call()


def _audit_here(request: dict) -> dict:
    """The course-audit flow run in this process (Prefect and Great Expectations imported now)."""
    import asyncio

    from cli.errors import route_library_logs_to_file

    quiet_prefect_defaults()
    from flows.audit import course_audit

    route_library_logs_to_file()
    return asyncio.run(course_audit(**request))


def _ask_warm(request: dict) -> dict | None:
    """The warm process's answer to this audit, or None when none serves this caller (none is up,
    it serves another Prefect API or code, or its code is stale)."""
    import os

    from cli import warm_client

    env = dict(os.environ)
    if console.width and "COLUMNS" not in env:
        env["COLUMNS"] = str(console.width)      # what it prints is wrapped for this terminal
    answer = warm_client.ask({"op": "audit", "identity": warm_client.identity(), "cwd": os.getcwd(),
                              "env": env, **request}, timeout=None)
    return None if answer is None or answer.get("refused") else answer


def _outcome_of(answer: dict) -> dict:
    """The warm run's outcome, as if it ran here: what it printed is printed, its error raised."""
    from cli.errors import CliError, debug_enabled

    sys.stdout.write(answer.get("stdout") or "")
    sys.stderr.write(answer.get("stderr") or "")
    if "outcome" in answer:
        return answer["outcome"]
    if debug_enabled() and answer.get("traceback"):
        sys.stderr.write(answer["traceback"])
    error = CliError(answer["error"])
    error.problems = list(answer.get("problems") or [answer["error"]])
    if answer.get("log"):
        error.problems[-1] += f" (traceback in {answer['log']}; --debug prints it)"
    raise error


def print_wrapped(text: str, out: Console = console, style: str | None = None, lead: str = "") -> None:
    """One message wrapped at the console width with a hanging indent (continuation lines start two
    spaces in), so long course lists and reasons stay readable in a terminal and in a log."""
    lines = wrap_lines(lead + text, out.width or 100, hang="  ").splitlines() or [""]
    for i, line in enumerate(lines):
        shown = escape(line)
        if i == 0 and style and lead:
            shown = f"[{style}]{escape(lead.rstrip())}[/{style}] " + escape(line[len(lead):])
        out.print(shown, highlight=False, soft_wrap=True)


def print_list(label: str, items: list[str], out: Console = console, limit: int = 30) -> None:
    """"label: a, b, c" wrapped at the console width with a hanging indent; long lists end in
    "… and N more" rather than filling the screen."""
    shown = items[:limit]
    text = ", ".join(shown) + (f", … and {len(items) - limit} more" if len(items) > limit else "")
    print_wrapped(f"{label}: {text}", out)


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
    out.print(f"Report: {outcome['report']}", highlight=False, soft_wrap=True)


def print_unverified(courses: list[dict], out: Console = err_console, limit: int = 20) -> None:
    """One line per course the LMS did not let us audit (its reason in a few words; no traceback)."""
    bad = [c for c in courses if c.get("status") == "unverified"]
    for c in bad[:limit]:
        reason = " ".join(str(c.get("reason") or "no reason recorded").split())
        print_wrapped(f"{c['platform']}/{c['context_id']}: {reason[:200]}", out, "yellow", "could not audit ")
    if len(bad) > limit:
        out.print(f"… and {len(bad) - limit} more course(s) could not be audited (see the report)")


def audit(
    ctx: typer.Context,
    platform: Optional[list[str]] = typer.Option(None, "--platform", help="Audit only this platform (repeatable)."),
    course: Optional[list[str]] = typer.Option(None, "--course", help="Audit only this course context id, or PLATFORM/CONTEXT_ID (repeatable)."),
    activity: Optional[list[str]] = typer.Option(None, "--activity", help="Audit only links to this activity id (repeatable)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the run, course statuses and findings to this JSON file."),
    no_alerts: bool = typer.Option(False, "--no-alerts", help="Do not send Slack alerts (or print the digest)."),
    config: Optional[str] = typer.Option(None, "--config", help="gradesync.toml path (default: $GRADESYNC_CONFIG or ./gradesync.toml)."),
    no_warm: bool = typer.Option(False, "--no-warm", help="Run in this process, not in the warm process "
                                 "(which keeps Prefect loaded between audits; see `gradesync warm`)."),
) -> None:
    """Audit grade sync now: extract from the LMS, validate, diagnose, report, alert.

    Exit codes: 0 the audit completed (findings are results, not errors); 3 it completed but some
    courses could not be audited (unverified); 1 it could not run — including when no course is in
    scope (nothing imported, another database, a filter that matches nothing): never a false all-clear."""
    import json

    from gradesync.audit.export import export_run
    from gradesync.settings import load_settings

    config = root_config(ctx, config)
    outcome = run_audit(config, platform, course, activity, not no_alerts, warm=not no_warm)
    settings = load_settings(config)
    data = export_run(settings.database.url, outcome["run_id"])
    print_summary(outcome)
    print_unverified(data["courses"])
    if json_path is not None:
        json_path.write_text(json.dumps(data, indent=2, default=str))
        console.print(f"JSON: {json_path}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_UNVERIFIED if outcome["unverified"] else EXIT_OK)


def describe_scope(data: dict) -> str:
    """Which run a findings listing shows and what that run covered, in one sentence."""
    started = (data.get("started_at") or "")[:16].replace("T", " ")
    params = data.get("params") or {}
    parts = [f"run {data['run_id']} ({data.get('kind')}, {data['state']}, started {started} UTC)"]
    plats = params.get("platforms") or []
    n = params.get("course_count", len(data.get("courses") or []))
    parts.append(f"{n} course(s) on {', '.join(plats) if plats else 'no platform'}")
    listed = params.get("courses") or []
    if listed and n <= 12:
        parts.append("courses " + ", ".join(listed))
    if params.get("activities"):
        parts.append(f"activities {', '.join(params['activities'])}")
    return "; ".join(parts)


def findings(
    ctx: typer.Context,
    run: Optional[int] = typer.Option(None, "--run", help="Audit run id (default: the latest audit)."),
    latest: bool = typer.Option(False, "--latest", help="The latest finding per cell (course / link / learner) "
                                "across all runs, leaving out cells a later audit found resolved."),
    category: Optional[str] = typer.Option(None, "--category", help="Only this category."),
    platform: Optional[list[str]] = typer.Option(None, "--platform", help="Only this platform (with --latest)."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
    config: Optional[str] = typer.Option(None, "--config", help="gradesync.toml path."),
) -> None:
    """Show the findings of an audit run (default: the latest), or with --latest the current finding of
    every cell across runs. The first line says which run(s) and scope are shown."""
    import csv
    import json

    from gradesync.audit.export import export_run, latest_run_id
    from gradesync.audit.latest import latest_findings
    from gradesync.audit.persist import open_database
    from gradesync.settings import ConfigError, load_settings

    config = root_config(ctx, config)
    settings = load_settings(config)
    if category and category not in CATEGORIES:
        raise ConfigError(f"unknown category {category!r} (one of: {', '.join(CATEGORIES)})")
    if fmt not in ("table", "json", "csv"):
        raise ConfigError(f"unknown format {fmt!r} (table | json | csv)")
    if latest and run is not None:
        raise ConfigError("--latest reads every run: leave out --run")
    url = open_database(settings.database.url)
    if latest:
        data = latest_findings(url, category=category, platforms=platform)
        runs = data["runs"]
        heading = (f"latest finding per cell across runs ({', '.join(map(str, runs))})" if runs
                   else "latest finding per cell: none open")
    else:
        run_id = run or latest_run_id(url)
        if run_id is None:
            raise ConfigError("no audit run yet: run `gradesync audit` first")
        try:
            data = export_run(url, run_id, category=category)
        except LookupError as e:
            raise ConfigError(str(e)) from None
        data["params"] = _run_params(url, run_id)
        heading = "findings of " + describe_scope(data)
    if platform and not latest:
        data["findings"] = [f for f in data["findings"] if f["platform"] in platform]
    if category:
        heading += f"; category {category}"
    if fmt == "json":
        sys.stdout.write(json.dumps({**data, "shown": heading}, indent=2, default=str) + "\n")
        return
    cols = ["id", "category", "platform", "context_id", "resource_link_id", "activity_id", "account_id",
            "lms_user_id", "tool_score", "tool_maximum", "lms_score", "lms_maximum", "action"]
    if fmt == "csv":
        err_console.print(escape(heading), highlight=False, soft_wrap=True)   # stdout stays pure CSV
        w = csv.writer(sys.stdout)
        w.writerow(cols + ["resync_state"] + (["run_id"] if latest else []))
        for f in data["findings"]:
            w.writerow([f[c] for c in cols] + [(f["resync"] or {}).get("state", "")]
                       + ([f["run_id"]] if latest else []))
        return
    print_list("Showing", [heading], limit=1)
    t = Table()
    for c in ("id", *(("run",) if latest else ()), "category", "platform", "course", "link", "learner", "tool",
              "lms", "resync"):
        t.add_column(c, overflow="fold")
    for f in data["findings"]:
        t.add_row(str(f["id"]), *((str(f["run_id"]),) if latest else ()), f["category"], f["platform"],
                  f["context_id"], f["resource_link_id"] or "", f["lms_user_id"] or "",
                  _score(f["tool_score"], f["tool_maximum"]), _score(f["lms_score"], f["lms_maximum"]),
                  (f["resync"] or {}).get("state", ""))
    console.print(t)
    counts = Counter(f["category"] for f in data["findings"])
    console.print(", ".join(f"{c}: {counts[c]}" for c in CATEGORIES if counts[c]) or "no findings")


def _run_params(url: str, run_id: int) -> dict:
    import models as m

    with m.session_scope(m.make_engine(url)) as s:
        row = s.get(m.AuditRun, run_id)
        return dict(row.params or {}) if row else {}


def _score(v, mx) -> str:
    return "" if v is None else f"{v:g}/{mx:g}" if mx else f"{v:g}"


audit_app = typer.Typer(add_completion=False)
audit_app.command("audit")(audit)
findings_app = typer.Typer(add_completion=False)
findings_app.command("findings")(findings)
