"""`gradesync serve`: serve the three deployments from this process (no work pool needed)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from cli.common import root_config
from cli.errors import CliError

PREFECT_YAML = Path(__file__).resolve().parents[1] / "prefect.yaml"


@dataclass(frozen=True)
class NightlySchedule:
    cron: str
    timezone: str
    active: bool


def nightly_schedule(path: Path = PREFECT_YAML) -> NightlySchedule:
    """The nightly-audit schedule from prefect.yaml: the one place it is written (`prefect deploy` and
    `gradesync serve` both use it, so they cannot disagree)."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise CliError(f"{path}: cannot read the nightly schedule: {e}") from None
    for d in doc.get("deployments") or []:
        if d.get("name") == "nightly-audit":
            schedules = d.get("schedules") or []
            if not schedules or not schedules[0].get("cron"):
                raise CliError(f"{path}: deployment nightly-audit has no cron schedule")
            first = schedules[0]
            return NightlySchedule(str(first["cron"]), str(first.get("timezone") or "UTC"),
                                   bool(first.get("active", True)))
    raise CliError(f"{path}: no deployment named nightly-audit")


def serve(
    ctx: typer.Context,
    config: Optional[str] = typer.Option(None, "--config", help="gradesync.toml path."),
    limit: int = typer.Option(2, "--limit", help="Flow runs at most in parallel in this process."),
) -> None:
    """Serve nightly-audit (cron and timezone from prefect.yaml, the schedule's one place), course-audit
    and resync against the Prefect API in PREFECT_API_URL. Schedules need a real server: `prefect server start`."""
    from gradesync.settings import load_settings

    config = root_config(ctx, config)
    load_settings(config)                 # a bad gradesync.toml fails here, not in the first nightly run
    schedule = nightly_schedule()
    if not os.environ.get("PREFECT_API_URL"):
        raise CliError("PREFECT_API_URL is not set. Prefect's temporary server never runs the scheduler, so the "
                       "nightly schedule would never fire: start `prefect server start` and set "
                       "PREFECT_API_URL=http://HOST:4200/api")
    from prefect import serve as prefect_serve
    from prefect.schedules import Cron

    from flows.audit import course_audit, nightly_audit
    from flows.resync import resync_pending

    params = {"config": str(config)} if config else {}
    prefect_serve(
        nightly_audit.to_deployment(name="nightly-audit", parameters=params, concurrency_limit=1,
                                    schedules=[Cron(schedule.cron, timezone=schedule.timezone, active=schedule.active)]),
        course_audit.to_deployment(name="course-audit", parameters=params),
        resync_pending.to_deployment(name="resync", parameters=params, concurrency_limit=1),
        limit=limit,
    )


serve_app = typer.Typer(add_completion=False)
serve_app.command("serve")(serve)
