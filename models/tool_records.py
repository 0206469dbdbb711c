"""The tool's own records (design.md "Inputs" 2), as imported from its CSV export.

Keys follow the domain: one course per (platform, context_id), one identity per (platform, lms_user_id),
one link per (platform, context_id, resource_link_id), one completion per (account_id, activity_id).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import ForeignKeyConstraint, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import JsonDict, UtcDateTime, utcnow


class Platform(SQLModel, table=True):
    """A platform registration, mirrored from gradesync.toml so other rows can reference its name."""

    __tablename__ = "platform"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    vendor: str = Field(max_length=20)
    issuer: str = Field(max_length=500)
    client_id: str = Field(max_length=255)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Course(SQLModel, table=True):
    __tablename__ = "course"
    __table_args__ = (UniqueConstraint("platform", "context_id", name="uq_course_platform_context"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    platform: str = Field(max_length=100, foreign_key="platform.name")
    context_id: str = Field(max_length=255)
    deployment_id: Optional[str] = Field(default=None, max_length=255)
    title: Optional[str] = Field(default=None, max_length=500)
    lineitems_url: Optional[str] = Field(default=None, sa_type=Text)
    memberships_url: Optional[str] = Field(default=None, sa_type=Text)
    starts_at: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)
    ends_at: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)


class Account(SQLModel, table=True):
    __tablename__ = "account"
    account_id: str = Field(primary_key=True, max_length=255)
    email: Optional[str] = Field(default=None, max_length=320, index=True)
    name: Optional[str] = Field(default=None, max_length=500)
    origin: str = Field(max_length=10)                     # lti | manual


class Identity(SQLModel, table=True):
    """The LTI `sub` (lms_user_id) of a platform linked to one of the tool's accounts."""

    __tablename__ = "identity"
    __table_args__ = (UniqueConstraint("platform", "lms_user_id", name="uq_identity_platform_user"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    account_id: str = Field(max_length=255, foreign_key="account.account_id", index=True)
    platform: str = Field(max_length=100, foreign_key="platform.name")
    lms_user_id: str = Field(max_length=255)


class Link(SQLModel, table=True):
    """A resource link placed in a course, pointing at one of the tool's activities."""

    __tablename__ = "link"
    __table_args__ = (
        UniqueConstraint("platform", "context_id", "resource_link_id", name="uq_link_platform_context_rl"),
        ForeignKeyConstraint(["platform", "context_id"], ["course.platform", "course.context_id"],
                             name="fk_link_course"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    platform: str = Field(max_length=100)
    context_id: str = Field(max_length=255)
    resource_link_id: str = Field(max_length=255)
    activity_id: str = Field(max_length=255, index=True)
    title: Optional[str] = Field(default=None, max_length=500)
    graded: bool


class Completion(SQLModel, table=True):
    """A learner's completed, scored activity. The launch context is empty after a manual login, and
    may be another course's (both are findings, so no foreign key to course)."""

    __tablename__ = "completion"
    __table_args__ = (UniqueConstraint("account_id", "activity_id", name="uq_completion_account_activity"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    account_id: str = Field(max_length=255, foreign_key="account.account_id")
    activity_id: str = Field(max_length=255, index=True)
    score_given: float
    score_maximum: float
    completed_at: datetime = Field(sa_type=UtcDateTime)
    platform: Optional[str] = Field(default=None, max_length=100, foreign_key="platform.name")
    context_id: Optional[str] = Field(default=None, max_length=255)
    resource_link_id: Optional[str] = Field(default=None, max_length=255)


class Passback(SQLModel, table=True):
    """One line of the tool's grade-passback log: what it sent to the LMS and what came back."""

    __tablename__ = "passback"
    __table_args__ = (
        UniqueConstraint("platform", "context_id", "resource_link_id", "lms_user_id", "timestamp",
                         name="uq_passback_platform_context_rl_user_ts"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    account_id: Optional[str] = Field(default=None, max_length=255)
    platform: str = Field(max_length=100, foreign_key="platform.name")
    context_id: str = Field(max_length=255)
    resource_link_id: str = Field(max_length=255)
    line_item_id: Optional[str] = Field(default=None, sa_type=Text)
    lms_user_id: str = Field(max_length=255)
    score_given: Optional[float] = None
    score_maximum: Optional[float] = None
    timestamp: datetime = Field(sa_type=UtcDateTime)
    status_code: int
    response: Optional[str] = Field(default=None, sa_type=Text)


class ImportBatch(SQLModel, table=True):
    """One `gradesync import DIR` run; counts holds per-file inserted/updated/unchanged/rejected."""

    __tablename__ = "import_batch"
    id: Optional[int] = Field(default=None, primary_key=True)
    folder: str = Field(sa_type=Text)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    finished_at: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)
    counts: dict[str, Any] = Field(default_factory=dict, sa_type=JsonDict)


class ImportRejection(SQLModel, table=True):
    """A CSV row that was not imported: file, physical line (header = 1), reason and the raw row."""

    __tablename__ = "import_rejection"
    id: Optional[int] = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="import_batch.id", ondelete="CASCADE", index=True)
    file: str = Field(max_length=255)
    line: int
    reason: str = Field(sa_type=Text)
    raw_row: Optional[str] = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
