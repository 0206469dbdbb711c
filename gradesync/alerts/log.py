"""alert_log reads and writes — the only database code of the alerts package (placeholder until models land)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from gradesync.alerts.incidents import AlertRecord


def load_history(session, *, run_id: int, routes: list[str], incident_keys: list[str]) -> list[AlertRecord]:
    raise NotImplementedError


def record(session, *, run_id: int, route: str, target: str, rows, status: str, attempts: int,
           payload: dict[str, Any], error: str | None, sent_at: datetime) -> None:
    raise NotImplementedError
