"""send_run_alerts: the one call the pipeline makes after an audit run. Plans (plan.py), delivers
(sender.py or the console), and records every delivery in alert_log (log.py). Never raises."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from rich.console import Console

from gradesync.alerts import log as alert_log
from gradesync.alerts.digest import build_digest_view, report_link
from gradesync.alerts.incidents import detect_incidents
from gradesync.alerts.plan import CONSOLE_ROUTE, PlannedMessage, plan_run_alerts
from gradesync.alerts.render import digest_text
from gradesync.alerts.routing import build_routes
from gradesync.alerts.sender import SendResult, SlackSender
from gradesync.console_text import stable_width, wrap_lines
from gradesync.findings import RunSummary
from gradesync.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class AlertOutcome:
    """What happened to this run's alerts; `failures` are one line each, safe to show in the report."""
    sent: int = 0
    failed: int = 0
    console: int = 0
    failures: list[str] = field(default_factory=list)
    delivered: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)  # (kind, route, keys)


def render_digest_text(summary: RunSummary, *, report_base_url: str | None = None) -> str:
    """The whole run's digest (every finding) as plain text, as the console route prints it."""
    view = build_digest_view(summary, summary.findings, summary.resolved, summary.unverified,
                             report=report_link(summary.report_path, report_base_url))
    return digest_text(view)


def _deliver(plan: PlannedMessage, payload: dict[str, Any] | None, sender: SlackSender,
             console: Console) -> tuple[str, SendResult]:
    if plan.route is CONSOLE_ROUTE:
        # markup=False: course titles and finding text may contain [brackets] Rich would swallow.
        # Wrapped here with a hanging indent (long course lists stay readable), not by Rich.
        console.print(wrap_lines(plan.console_text, console.width), markup=False, highlight=False, soft_wrap=True)
        return "console", SendResult(True, 1)
    if payload is None:
        return "failed", SendResult(False, 0, None, "message could not be built")
    if not plan.route.url:
        return "failed", SendResult(False, 0, None, plan.route.problem or "no webhook URL")
    result = sender.send(plan.route.url, payload)
    return ("sent" if result.ok else "failed"), result


def send_run_alerts(session, summary: RunSummary, settings: Settings, *, console: Console | None = None,
                    now: datetime | None = None, sender: SlackSender | None = None,
                    env: dict[str, str] | None = None) -> AlertOutcome:
    """Send (or print) the run's digest per route and its due incident messages; record each in
    alert_log; return counts and failures. Slack or database trouble is reported, never raised."""
    outcome = AlertOutcome()
    now = now or datetime.now(timezone.utc)
    sender = sender or SlackSender()
    console = console or Console(width=stable_width())
    slack = settings.slack
    try:
        table = build_routes(slack, env)
        names = [r.name for r in table.routes] or [CONSOLE_ROUTE.name]
        keys = [i.key for i in detect_incidents(summary)]
        # session=None (a dry run from the CLI): nothing to dedupe against and nothing is recorded.
        history = [] if session is None else \
            alert_log.load_history(session, run_id=summary.run_id, routes=names, incident_keys=keys)
        plans = plan_run_alerts(summary, table, history, now=now, reminder_days=slack.incident_reminder_days,
                                report_base_url=slack.report_base_url,
                                vendors={p.name: p.vendor.value for p in settings.platforms})
    except Exception as e:  # noqa: BLE001 — alerts must never fail the pipeline
        log.exception("planning the alerts of run %s failed", summary.run_id)
        outcome.failures.append(f"alerts for run {summary.run_id} could not be planned: {type(e).__name__}: {e}")
        return outcome

    for plan in plans:
        try:
            payload = plan.message.to_payload()
        except Exception as e:  # noqa: BLE001 — a Block Kit limit broken by a bug: record, don't crash
            log.error("building the %s message for route %s failed: %s", plan.kind, plan.route.name, e)
            payload = None
        status, result = _deliver(plan, payload, sender, console)
        if status == "sent":
            outcome.sent += 1
        elif status == "console":
            outcome.console += 1
        else:
            outcome.failed += 1
            where = f"route '{plan.route.name}'" + (f" ({plan.route.target})" if plan.route.target else "")
            what = plan.kind + (f" {plan.incident_keys[0]}" if plan.kind != "digest" and len(plan.rows) == 1
                                else f" ×{len(plan.rows)}" if len(plan.rows) > 1 else "")
            outcome.failures.append(f"Slack {what} for run {summary.run_id} → {where}: {result.error}"
                                    + (f" (after {result.attempts} attempts)" if result.attempts > 1 else ""))
        outcome.delivered.append((plan.kind, plan.route.name, plan.incident_keys))
        if session is None:
            continue
        try:
            alert_log.record(session, run_id=summary.run_id, route=plan.route.name, target=plan.route.target,
                             rows=plan.rows, status=status, attempts=result.attempts,
                             payload=payload if payload is not None else {"text": plan.message.text},
                             error=result.error, sent_at=now)
        except Exception as e:  # noqa: BLE001
            log.exception("recording alert_log for run %s failed", summary.run_id)
            outcome.failures.append(f"alert log for run {summary.run_id} could not be written: "
                                    f"{type(e).__name__}: {e}")
    return outcome
