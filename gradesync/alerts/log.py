"""alert_log reads and writes: the only database code of the alerts package. The decisions themselves
are made over the plain AlertRecord rows this returns (incidents.py, plan.py)."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_
from sqlmodel import Session, select

from gradesync.alerts.incidents import AlertRecord
from models.alerts import AlertLog


def load_history(session: Session, *, run_id: int, routes: Sequence[str],
                 incident_keys: Sequence[str]) -> list[AlertRecord]:
    """Rows that matter to this run: anything already logged for this run (re-run dedupe) and every
    earlier incident/reminder row of tonight's incident keys (once-per-incident and reminders)."""
    if not routes:
        return []
    cond = AlertLog.run_id == run_id
    if incident_keys:
        cond = or_(cond, and_(AlertLog.kind.in_(("incident", "reminder")),
                              AlertLog.incident_key.in_(list(incident_keys))))
    stmt = select(AlertLog).where(AlertLog.route.in_(list(routes))).where(cond)
    return [AlertRecord(r.run_id, r.kind, r.route, r.incident_key, r.status, r.sent_at)
            for r in session.exec(stmt)]


def record(session: Session, *, run_id: int, route: str, target: str, rows: Sequence[tuple[str, str]],
           status: str, attempts: int, payload: dict[str, Any], error: str | None, sent_at: datetime) -> None:
    """Write one row per (kind, incident_key) of a delivered message, replacing this run's earlier
    attempt at the same row (a failed send retried by a re-run), and commit so a crash keeps it."""
    for kind, key in rows:
        existing = session.exec(select(AlertLog).where(
            AlertLog.run_id == run_id, AlertLog.kind == kind, AlertLog.route == route,
            AlertLog.incident_key == key)).first()
        row = existing or AlertLog(run_id=run_id, kind=kind, route=route, incident_key=key, status=status)
        row.target = target or None
        row.status = status
        row.attempts = (existing.attempts if existing else 0) + attempts
        row.payload = payload
        row.error = error
        row.sent_at = sent_at
        session.add(row)
    session.commit()


def alerts_of_run(session: Session, run_id: int) -> list[AlertLog]:
    """Everything logged for one run (for the report: what was sent to whom, and what failed)."""
    return list(session.exec(select(AlertLog).where(AlertLog.run_id == run_id).order_by(AlertLog.id)))
