"""`gradesync night`: the nightly audit now, in this process — the nightly-audit flow (the night plan,
its batches, then the resync) that the schedule runs, for an on-call engineer who cannot wait for 02:00."""
from __future__ import annotations

from typing import Optional

import typer

from cli.common import root_config

EXIT_OK, EXIT_UNVERIFIED = 0, 3


def night(
    ctx: typer.Context,
    full: bool = typer.Option(False, "--full", help="Read every course, every line item (the night plan "
                              "otherwise reads what can have changed: see README 'What a night reads')."),
    no_alerts: bool = typer.Option(False, "--no-alerts", help="Do not send Slack alerts (or print the digest)."),
    resync: Optional[bool] = typer.Option(None, "--resync/--no-resync", help="Run the pending resyncs after "
                                          "the audit (default: [audit] resync_after_audit)."),
    config: Optional[str] = typer.Option(None, "--config", help="gradesync.toml path."),
) -> None:
    """Run tonight's nightly audit now (a nightly-audit flow run in this process).

    Exit codes as `gradesync audit`: 0 completed; 3 some courses could not be audited; 1 it could not run."""
    import asyncio

    from cli.audit import check_before_audit, print_summary, print_unverified
    from cli.common import quiet_prefect_defaults
    from cli.errors import route_library_logs_to_file
    from gradesync.audit.export import export_run

    config = root_config(ctx, config)
    settings, _ = check_before_audit(config, None, None, None)
    quiet_prefect_defaults()
    from flows.audit import nightly_audit

    route_library_logs_to_file()
    outcome = asyncio.run(nightly_audit(alerts=not no_alerts, resync=resync, config=config, full=full))
    print_summary(outcome)
    print_unverified(export_run(settings.database.url, outcome["run_id"])["courses"])
    not_read = outcome.get("not_read") or {}
    if not_read:
        typer.echo(f"not read tonight: {sum(not_read.values())} course(s) — "
                   + "; ".join(f"{why}: {n}" for why, n in sorted(not_read.items(), key=lambda kv: -kv[1])))
    raise typer.Exit(EXIT_UNVERIFIED if outcome["unverified"] else EXIT_OK)


night_app = typer.Typer(add_completion=False)
night_app.command("night")(night)
