"""Slack alerting for audit runs: a digest per route, immediate course-wide incident messages with
reminders, routing by platform/category/severity, console fallback, and an alert log against re-sends.

Entry point: `send_run_alerts(session, summary, settings, console=...) -> AlertOutcome`.
"""
from gradesync.alerts.incidents import AlertRecord, Incident, detect_incidents, incident_decision
from gradesync.alerts.plan import PlannedMessage, plan_run_alerts
from gradesync.alerts.render import SlackMessage
from gradesync.alerts.routing import Route, RoutingTable, build_routes, webhook_host
from gradesync.alerts.sender import SendResult, SlackSender
from gradesync.alerts.service import AlertOutcome, render_digest_text, send_run_alerts

__all__ = [
    "AlertOutcome", "AlertRecord", "Incident", "PlannedMessage", "Route", "RoutingTable", "SendResult",
    "SlackMessage", "SlackSender", "build_routes", "detect_incidents", "incident_decision", "plan_run_alerts",
    "render_digest_text", "send_run_alerts", "webhook_host",
]
