"""Audit runs, per-course audit status, the LMS snapshot each run saw, and the findings it produced."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.enums import FindingCategory, str_enum
from models.types import JsonDict, JsonList, UtcDateTime, utcnow


class AuditRun(SQLModel, table=True):
    """One audit or resync run. kind: nightly | course-audit | resync;
    state: running | completed | partial | failed."""

    __tablename__ = "audit_run"
    id: Optional[int] = Field(default=None, primary_key=True)
    flow_run_id: Optional[str] = Field(default=None, max_length=64, index=True)
    kind: str = Field(max_length=20)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    finished_at: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)
    state: str = Field(default="running", max_length=20)
    params: dict[str, Any] = Field(default_factory=dict, sa_type=JsonDict)
    counts: dict[str, Any] = Field(default_factory=dict, sa_type=JsonDict)
    request_stats: dict[str, Any] = Field(default_factory=dict, sa_type=JsonDict)
    report_path: Optional[str] = Field(default=None, sa_type=Text)


class CourseAudit(SQLModel, table=True):
    """Whether a course was audited in a run, or is unverified (extraction failed) and why."""

    __tablename__ = "course_audit"
    __table_args__ = (UniqueConstraint("run_id", "platform", "context_id", name="uq_course_audit_run_course"),
                      Index("ix_course_audit_course_run", "platform", "context_id", "run_id"))
    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="audit_run.id", ondelete="CASCADE")
    platform: str = Field(max_length=100)
    context_id: str = Field(max_length=255)
    status: str = Field(max_length=20)                      # audited | unverified
    reason: Optional[str] = Field(default=None, sa_type=Text)
    expected_count: Optional[int] = None                   # expected grades (learner x graded activity)
    present_count: Optional[int] = None                    # of which the LMS shows a score
    batch_id: Optional[int] = None                         # audit_batch.id that audited the course


class AuditBatch(SQLModel, table=True):
    """One batch of a run's courses, audited by one worker (its own flow run): what it read, where it ran,
    its Great Expectations results and data-quality warnings (the run's report merges them)."""

    __tablename__ = "audit_batch"
    __table_args__ = (UniqueConstraint("run_id", "seq", name="uq_audit_batch_run_seq"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="audit_run.id", ondelete="CASCADE")
    seq: int                                                # 1.. within the run
    platform: str = Field(max_length=100)
    course_count: int = 0
    state: str = Field(default="planned", max_length=20)    # planned | running | completed | failed
    flow_run_id: Optional[str] = Field(default=None, max_length=64)
    worker: Optional[str] = Field(default=None, max_length=255)   # host:pid that ran it
    started_at: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)
    finished_at: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)
    request_stats: dict[str, Any] = Field(default_factory=dict, sa_type=JsonDict)
    counts: dict[str, Any] = Field(default_factory=dict, sa_type=JsonDict)
    validation: list[Any] = Field(default_factory=list, sa_type=JsonList)   # GX result dicts
    warnings: list[Any] = Field(default_factory=list, sa_type=JsonList)     # DataQualityWarning dicts
    peak_rss_mb: Optional[float] = None
    error: Optional[str] = Field(default=None, sa_type=Text)


class LmsLineItem(SQLModel, table=True):
    __tablename__ = "lms_line_item"
    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="audit_run.id", ondelete="CASCADE", index=True)
    platform: str = Field(max_length=100)
    context_id: str = Field(max_length=255)
    line_item_id: str = Field(sa_type=Text)
    label: Optional[str] = Field(default=None, sa_type=Text)
    score_maximum: Optional[float] = None
    resource_link_id: Optional[str] = Field(default=None, max_length=255)
    resource_id: Optional[str] = Field(default=None, max_length=255)
    tag: Optional[str] = Field(default=None, max_length=255)
    start_date_time: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)
    end_date_time: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)


class LmsResult(SQLModel, table=True):
    __tablename__ = "lms_result"
    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="audit_run.id", ondelete="CASCADE", index=True)
    platform: str = Field(max_length=100)
    context_id: str = Field(max_length=255)
    line_item_id: str = Field(sa_type=Text)
    user_id: Optional[str] = Field(default=None, max_length=255)
    result_score: Optional[float] = None
    result_maximum: Optional[float] = None
    scoring_user_id: Optional[str] = Field(default=None, max_length=255)
    comment: Optional[str] = Field(default=None, sa_type=Text)
    timestamp: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)


class LmsMember(SQLModel, table=True):
    __tablename__ = "lms_member"
    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="audit_run.id", ondelete="CASCADE", index=True)
    platform: str = Field(max_length=100)
    context_id: str = Field(max_length=255)
    user_id: str = Field(max_length=255)
    roles: list[str] = Field(default_factory=list, sa_type=JsonList)
    status: Optional[str] = Field(default=None, max_length=20)
    name: Optional[str] = Field(default=None, max_length=500)
    email: Optional[str] = Field(default=None, max_length=320)


class Finding(SQLModel, table=True):
    """One diagnosed gap. `identity` is stable across runs (gradesync.findings.identity_of)."""

    __tablename__ = "finding"
    __table_args__ = (UniqueConstraint("run_id", "identity", name="uq_finding_run_identity"),
                      Index("ix_finding_run_course", "run_id", "platform", "context_id"))
    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="audit_run.id", ondelete="CASCADE")
    identity: str = Field(sa_type=Text)
    category: FindingCategory = Field(sa_type=str_enum(FindingCategory, "finding_category"), index=True)
    level: str = Field(max_length=10)                       # course | item | learner
    platform: str = Field(max_length=100)
    context_id: str = Field(max_length=255)
    resource_link_id: Optional[str] = Field(default=None, max_length=255)
    activity_id: Optional[str] = Field(default=None, max_length=255)
    line_item_id: Optional[str] = Field(default=None, sa_type=Text)
    account_id: Optional[str] = Field(default=None, max_length=255)
    lms_user_id: Optional[str] = Field(default=None, max_length=255)
    tool_score: Optional[float] = None
    tool_maximum: Optional[float] = None
    lms_score: Optional[float] = None
    lms_maximum: Optional[float] = None
    evidence: dict[str, Any] = Field(default_factory=dict, sa_type=JsonDict)
    action: str = Field(default="", sa_type=Text)
