"""`gradesync serve`: serve the three deployments from this process (no work pool needed)."""
from __future__ import annotations

import os
from typing import Optional

import typer
from rich.console import Console

from gradesync.settings import ConfigError, load_settings

console = Console(stderr=True)


def serve(
    ctx: typer.Context,
    config: Optional[str] = typer.Option(None, "--config", help="gradesync.toml path."),
    limit: int = typer.Option(2, "--limit", help="Flow runs at most in parallel in this process."),
) -> None:
    """Serve nightly-audit (cron from [audit] schedule_cron/timezone), course-audit and resync
    against the Prefect API in PREFECT_API_URL. Schedules need a real server: `prefect server start`."""
    from gradesync.cli_audit import root_config

    config = root_config(ctx, config)
    try:
        settings = load_settings(config)
    except ConfigError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1)
    if not os.environ.get("PREFECT_API_URL"):
        console.print("[red]error:[/red] PREFECT_API_URL is not set. Prefect's temporary server never runs the "
                      "scheduler, so the nightly schedule would never fire: start `prefect server start` and set "
                      "PREFECT_API_URL=http://HOST:4200/api")
        raise typer.Exit(1)
    from prefect import serve as prefect_serve
    from prefect.schedules import Cron

    from flows.audit import course_audit, nightly_audit
    from flows.resync import resync_pending

    params = {"config": str(config)} if config else {}
    prefect_serve(
        nightly_audit.to_deployment(name="nightly-audit", parameters=params, concurrency_limit=1,
                                    schedules=[Cron(settings.audit.schedule_cron, timezone=settings.audit.timezone)]),
        course_audit.to_deployment(name="course-audit", parameters=params),
        resync_pending.to_deployment(name="resync", parameters=params, concurrency_limit=1),
        limit=limit,
    )


serve_app = typer.Typer(add_completion=False)
serve_app.command("serve")(serve)
