"""What was sent to Slack (or printed), so a re-run never sends the same digest or incident twice."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import JsonDict, UtcDateTime


class AlertLog(SQLModel, table=True):
    """kind: digest | incident | reminder; status: sent | failed | console. `target` is the webhook's
    host only — the full webhook URL is a secret and is never stored. Digests use incident_key ''."""

    __tablename__ = "alert_log"
    __table_args__ = (
        UniqueConstraint("run_id", "kind", "route", "incident_key", name="uq_alert_log_run_kind_route_key"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="audit_run.id", ondelete="CASCADE")
    kind: str = Field(max_length=20)
    route: str = Field(max_length=100)
    target: Optional[str] = Field(default=None, max_length=255)
    incident_key: str = Field(default="", max_length=500)
    status: str = Field(max_length=20)
    attempts: int = 0
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JsonDict)
    error: Optional[str] = Field(default=None, sa_type=Text)
    sent_at: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)
