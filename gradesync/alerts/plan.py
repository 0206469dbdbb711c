"""Decide every message of a run — which digest and incident messages go to which route — from plain
data (run summary, routes, alert history, clock). No I/O: service.py sends what this plans."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from slack_sdk.models.blocks import Block, ContextBlock, DividerBlock, HeaderBlock

from gradesync.alerts.digest import DigestView, build_digest_view, report_link
from gradesync.alerts.incidents import (DELIVERED, AlertRecord, Incident, detect_incidents, incident_decision,
                                        is_reopened, open_since)
from gradesync.alerts.render import (HEADER_LIMIT, MAX_BLOCKS, SECTION_LIMIT, SlackMessage, clip, context,
                                     digest_message, digest_text, esc, fit_lines, report_mrkdwn, section)
from gradesync.alerts.routing import Route, RoutingTable, findings_for
from gradesync.findings import RunSummary

CONSOLE_ROUTE = Route(name="console", url=None)
_MRKDWN_MARKS = re.compile(r"[*`]([^*`\n]+)[*`]")
MAX_SEPARATE_INCIDENTS = 5      # more than this many at once → one combined message (no Slack flood)


@dataclass(frozen=True)
class PlannedMessage:
    """One message to deliver; logged as one alert_log row per (kind, incident key) in `rows`
    (a digest is the single row ("digest", ""); a combined incident message has one row per incident)."""
    kind: str                               # digest | incident | reminder (the message as a whole)
    route: Route
    rows: tuple[tuple[str, str], ...]
    message: SlackMessage
    console_text: str

    @property
    def incident_keys(self) -> tuple[str, ...]:
        return tuple(k for _, k in self.rows)


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt


def scope_label(route: Route) -> str:
    parts = []
    if route.platforms:
        parts.append(", ".join(sorted(route.platforms)))
    if route.categories:
        parts.append(", ".join(sorted(route.categories)))
    return " · ".join(parts)


def digest_view_for(summary: RunSummary, route: Route, *, report: str | None) -> DigestView:
    """The digest numbers a route sees: its findings, its resolved findings, its platforms' unverified courses."""
    unverified = [c for c in summary.unverified if route.matches_platform(c.platform)]
    return build_digest_view(summary, findings_for(route, summary.findings), findings_for(route, summary.resolved),
                             unverified, report=report, scope=scope_label(route))


def incident_message(inc: Incident, kind: str, *, run_id: int, since: datetime | None, now: datetime,
                     report: str | None) -> SlackMessage:
    """An incident (or its reminder) as its own message, with what to check."""
    if kind == "reminder":
        days = (now - since).days if since else None
        age = f"open {days} day{'s' if days != 1 else ''}" if days is not None else "still open"
        head, text = f"⏰ Reminder ({age}): {inc.headline}", f"gradesync reminder ({age}): {inc.headline}"
    else:
        head, text = f"🚨 {inc.headline}", f"gradesync incident: {inc.headline}"
    blocks: list[Block] = [HeaderBlock(text=clip(head, HEADER_LIMIT))]
    if kind == "reminder" and since:
        blocks.append(section(f"Still open in audit run {run_id}; first reported {since:%Y-%m-%d %H:%M} UTC."))
    if inc.details:
        blocks.append(section(fit_lines([esc(d) for d in inc.details], SECTION_LIMIT)))
    if inc.checklist:
        blocks.append(section("*What to check*\n" + fit_lines([f"☐ {esc(c)}" for c in inc.checklist])))
    blocks.append(context(f"audit run {run_id} · incident `{esc(inc.key)}`"
                          + (f" · {report_mrkdwn(report)}" if report else "")))
    return SlackMessage(text=text, blocks=tuple(blocks))


def combined_incident_message(items: list[tuple[Incident, str]], *, run_id: int,
                              report: str | None) -> SlackMessage:
    """Many incidents at once (e.g. dozens of unreachable courses) as one message, one line each."""
    n_new = sum(1 for _, k in items if k == "incident")
    n_rem = len(items) - n_new
    label = f"{len(items)} course-wide incidents" + (f" ({n_rem} still open, reminder)" if n_rem else "")
    lines = [("⏰ " if k == "reminder" else "🚨 ") + esc(i.headline) for i, k in items]
    blocks: list[Block] = [HeaderBlock(text=clip(f"🚨 {label}", HEADER_LIMIT)),
                           section(fit_lines(lines, SECTION_LIMIT))]
    kinds = sorted({i.kind for i, _ in items})
    checks: list[str] = []
    for i, _ in items:                       # one checklist per kind of incident, not per incident
        if i.kind in kinds:
            kinds.remove(i.kind)
            checks += [c for c in i.checklist if c not in checks]
    if checks:
        blocks.append(section("*What to check*\n" + fit_lines([f"☐ {esc(c)}" for c in checks])))
    blocks.append(DividerBlock())
    blocks.append(context(f"audit run {run_id}" + (f" · {report_mrkdwn(report)}" if report else "")))
    assert len(blocks) <= MAX_BLOCKS
    return SlackMessage(text=f"gradesync: {label}", blocks=tuple(blocks))


def _console_text(msg: SlackMessage) -> str:
    lines = [msg.text]
    for b in msg.blocks:
        if isinstance(b, HeaderBlock):
            continue
        if isinstance(b, ContextBlock):
            lines += ["  " + e.text for e in b.elements if hasattr(e, "text")]
        elif getattr(b, "text", None) is not None:
            lines += ["  " + ln for ln in b.text.text.splitlines()]
    # The console is not Slack: drop mrkdwn bold/code marks, then undo the escaping of esc().
    text = _MRKDWN_MARKS.sub(r"\1", "\n".join(lines))
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def plan_run_alerts(summary: RunSummary, table: RoutingTable, history: list[AlertRecord], *, now: datetime,
                    reminder_days: int, report_base_url: str | None = None,
                    vendors: dict[str, str] | None = None) -> list[PlannedMessage]:
    """Every message this run should deliver, per route, after dedupe against the alert history."""
    now = _utc(now)
    history = [AlertRecord(**{**r.__dict__, "sent_at": _utc(r.sent_at) if r.sent_at else None}) for r in history]
    report = report_link(summary.report_path, report_base_url)
    routes = table.routes or [CONSOLE_ROUTE]
    incidents = detect_incidents(summary, vendors)      # checklists in each platform's own terms
    plans: list[PlannedMessage] = []
    for route in routes:
        if route.wants("digest") and not any(
                r.run_id == summary.run_id and r.kind == "digest" and r.route == route.name
                and r.status in DELIVERED for r in history):
            view = digest_view_for(summary, route, report=report)
            plans.append(PlannedMessage("digest", route, (("digest", ""),), digest_message(view),
                                        digest_text(view)))
        if not route.wants("incident"):
            continue
        due: list[tuple[Incident, str]] = []
        for inc in incidents:
            if not (route.matches_platform(inc.platform) and route.matches_categories(inc.categories)):
                continue
            kind = incident_decision(inc.key, route.name, history, run_id=summary.run_id, now=now,
                                     reminder_days=reminder_days,
                                     reopened=is_reopened(inc, summary.new))
            if kind:
                due.append((inc, kind))
        if len(due) > MAX_SEPARATE_INCIDENTS:
            msg = combined_incident_message(due, run_id=summary.run_id, report=report)
            kind = "incident" if any(k == "incident" for _, k in due) else "reminder"
            plans.append(PlannedMessage(kind, route, tuple((k, i.key) for i, k in due), msg, _console_text(msg)))
            continue
        for inc, kind in due:
            msg = incident_message(inc, kind, run_id=summary.run_id, now=now, report=report,
                                   since=open_since(inc.key, route.name, history))
            plans.append(PlannedMessage(kind, route, ((kind, inc.key),), msg, _console_text(msg)))
    return plans
