"""Resync tasks (a state machine with attempts) and the log of each attempt."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.enums import OPEN_RESYNC_STATES, FindingCategory, ResyncState, str_enum
from models.types import UtcDateTime, utcnow

_OPEN_STATES_SQL = text("state IN ({})".format(", ".join(f"'{s.value}'" for s in OPEN_RESYNC_STATES)))


class ResyncTask(SQLModel, table=True):
    """A score to (re)send for one learner and line item. At most one *open* task per
    (platform, line_item_id, lms_user_id): a partial unique index, so closed tasks stay as history."""

    __tablename__ = "resync_task"
    __table_args__ = (
        Index("uq_resync_task_open", "platform", "line_item_id", "lms_user_id", unique=True,
              sqlite_where=_OPEN_STATES_SQL, postgresql_where=_OPEN_STATES_SQL),
        Index("ix_resync_task_state_next", "state", "next_attempt_at"),
        Index("ix_resync_task_course", "platform", "context_id"),     # a batch's resync sends (migration 0005)
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    identity: str = Field(sa_type=Text)                     # the finding identity that created it
    platform: str = Field(max_length=100)
    context_id: str = Field(max_length=255)
    resource_link_id: Optional[str] = Field(default=None, max_length=255)
    line_item_id: str = Field(max_length=2000)
    lms_user_id: str = Field(max_length=255)
    account_id: Optional[str] = Field(default=None, max_length=255)
    activity_id: Optional[str] = Field(default=None, max_length=255)
    score_given: float
    score_maximum: float
    completed_at: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)
    category: FindingCategory = Field(sa_type=str_enum(FindingCategory, "finding_category"))
    state: ResyncState = Field(default=ResyncState.pending, sa_type=str_enum(ResyncState, "resync_state"))
    attempts: int = 0
    next_attempt_at: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)
    last_status: Optional[int] = None
    last_response: Optional[str] = Field(default=None, sa_type=Text)
    last_timestamp_sent: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)
    # How the last handling ended (`verified`, `failed:accepted_not_shown`, `held:platform_keeps_grade`…):
    # the queue reads it so a refused supersede is not re-opened as a fresh approval request each night.
    last_outcome: Optional[str] = Field(default=None, max_length=40)
    # Set while the line item refuses scores as inactive (item_not_active): the task waits; one task of
    # the item is sent per resync run as a probe, and when it lands the item's tasks are released.
    item_blocked_at: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)
    approved_by: Optional[str] = Field(default=None, max_length=255)
    approved_at: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)
    claimed_by: Optional[str] = Field(default=None, max_length=255)
    claimed_at: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)
    created_run_id: Optional[int] = Field(default=None, foreign_key="audit_run.id", ondelete="SET NULL")
    updated_run_id: Optional[int] = Field(default=None, foreign_key="audit_run.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ResyncAttempt(SQLModel, table=True):
    """One send of a resync task: the timestamp we sent, the platform's answer, and what we concluded."""

    __tablename__ = "resync_attempt"
    __table_args__ = (UniqueConstraint("task_id", "attempt_no", name="uq_resync_attempt_task_no"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="resync_task.id", ondelete="CASCADE")
    attempt_no: int
    timestamp_sent: datetime = Field(sa_type=UtcDateTime)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    finished_at: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)
    status_code: Optional[int] = None
    response: Optional[str] = Field(default=None, sa_type=Text)
    outcome: Optional[str] = Field(default=None, max_length=40)
