"""The tool's own records (design.md "Inputs" 2), as imported from its CSV export.

Keys follow the domain: one course per (platform, context_id), one identity per (platform, lms_user_id),
one link per (platform, context_id, resource_link_id), one completion per (account_id, activity_id,
launch context). The passback log is append-only: no key of its own, see `passback_digest`.

`retired_at` (courses, identities, links, completions): set by `gradesync import --full` when a full
export no longer holds the row; kept for history, never read by the audit; cleared when the row returns.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Optional

from sqlalchemy import ForeignKeyConstraint, Index, Text, UniqueConstraint, event
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
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
    retired_at: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)


class Account(SQLModel, table=True):
    __tablename__ = "account"
    # ix_account_email_norm (below the class): accounts by email as the diagnosis compares them.
    account_id: str = Field(primary_key=True, max_length=255)
    email: Optional[str] = Field(default=None, max_length=320, index=True)
    name: Optional[str] = Field(default=None, max_length=500)
    origin: str = Field(max_length=10)                     # lti | manual


class email_key(FunctionElement):
    """lower(trim(email)): an account's email as the diagnosis compares it (case-insensitive, blanks
    trimmed), the expression of ix_account_email_norm (migration 0005)."""
    inherit_cache = True
    name = "email_key"


@compiles(email_key)
def _email_key(element, compiler, **kw) -> str:
    return f"lower(trim({compiler.process(element.clauses, **kw)}))"


@compiles(email_key, "postgresql")
def _email_key_pg(element, compiler, **kw) -> str:
    # Spelled as PostgreSQL (14+) deparses the index (pg_get_indexdef): Alembic then sees no drift.
    return f"lower(TRIM(BOTH FROM {compiler.process(element.clauses, **kw)}))"


# A batch reads accounts by its learners' emails (gradesync/audit/records.py), not the whole table.
Index("ix_account_email_norm", email_key(Account.__table__.c.email))


class Identity(SQLModel, table=True):
    """The LTI `sub` (lms_user_id) of a platform linked to one of the tool's accounts."""

    __tablename__ = "identity"
    __table_args__ = (UniqueConstraint("platform", "lms_user_id", name="uq_identity_platform_user"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    account_id: str = Field(max_length=255, foreign_key="account.account_id", index=True)
    platform: str = Field(max_length=100, foreign_key="platform.name")
    lms_user_id: str = Field(max_length=255)
    retired_at: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)


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
    retired_at: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)


@lru_cache(maxsize=65536)        # an import asks once per row, for a few thousand distinct contexts
def launch_context_key(platform: str | None, context_id: str | None) -> str:
    """The completion's launch context as one non-null key: `none` after a manual login, else the JSON
    pair ["platform","context_id"]. Why a stored key: NULLs never collide in a unique constraint (SQLite
    and PostgreSQL alike), so two manual-login completions of one activity would both be kept."""
    if platform is None and context_id is None:
        return "none"
    return json.dumps([platform, context_id], ensure_ascii=False, separators=(",", ":"))


class Completion(SQLModel, table=True):
    """A learner's completed, scored activity, one per launch context (a retake term or a cross-listed
    section is another context). The context is empty after a manual login, and may be another course's
    (both are findings, so no foreign key to course)."""

    __tablename__ = "completion"
    __table_args__ = (UniqueConstraint("account_id", "activity_id", "launch_context",
                                       name="uq_completion_account_activity_context"),
                      # completions launched in a batch's courses (expected grades (b)): migration 0005
                      Index("ix_completion_launch_course", "platform", "context_id", "activity_id"))
    id: Optional[int] = Field(default=None, primary_key=True)
    account_id: str = Field(max_length=255, foreign_key="account.account_id")
    activity_id: str = Field(max_length=255, index=True)
    score_given: float
    score_maximum: float
    completed_at: datetime = Field(sa_type=UtcDateTime)
    platform: Optional[str] = Field(default=None, max_length=100, foreign_key="platform.name")
    context_id: Optional[str] = Field(default=None, max_length=255)
    resource_link_id: Optional[str] = Field(default=None, max_length=255)
    launch_context: str = Field(default="", sa_type=Text)      # launch_context_key(platform, context_id)
    retired_at: Optional[datetime] = Field(default=None, sa_type=UtcDateTime)
    # When an import inserted this row or changed its score / date (a course with no change since its
    # last clean audit is read on the rolling cadence: gradesync/audit/night_plan.py).
    changed_at: Optional[datetime] = Field(default_factory=utcnow, sa_type=UtcDateTime)


PASSBACK_CONTENT = ("account_id", "platform", "context_id", "resource_link_id", "line_item_id", "lms_user_id",
                    "score_given", "score_maximum", "timestamp", "status_code", "response")


def passback_digest(row: dict[str, Any]) -> str:
    """SHA-256 of a passback row's whole content (PASSBACK_CONTENT, normalised: UTC timestamp, float
    scores). With `occurrence` it is the row's identity: the Nth identical row of an export is the Nth
    stored copy, so a retried POST logged twice is two rows, and re-importing a file (or a delta export
    that repeats old rows) adds nothing. Migration 0002 holds a frozen copy: change both or neither."""
    ts = row["timestamp"].astimezone(timezone.utc).isoformat(timespec="microseconds")
    given, maximum, status = row["score_given"], row["score_maximum"], row["status_code"]
    content = [row["account_id"], row["platform"], row["context_id"], row["resource_link_id"],
               row["line_item_id"], row["lms_user_id"], None if given is None else float(given),
               None if maximum is None else float(maximum), ts, None if status is None else int(status),
               row["response"]]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


class Passback(SQLModel, table=True):
    """One line of the tool's grade-passback log: what it sent to the LMS and what came back. Append-only
    (design.md "Inputs" 2): a retried POST with the same payload and timestamp is another row; status_code
    is empty when no answer came (timed out); resource_link_id is empty for a tool-created line item."""

    __tablename__ = "passback"
    __table_args__ = (
        UniqueConstraint("row_digest", "occurrence", name="uq_passback_digest_occurrence"),
        Index("ix_passback_platform_context", "platform", "context_id"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    account_id: Optional[str] = Field(default=None, max_length=255)
    platform: str = Field(max_length=100, foreign_key="platform.name")
    context_id: str = Field(max_length=255)
    resource_link_id: Optional[str] = Field(default=None, max_length=255)
    line_item_id: Optional[str] = Field(default=None, sa_type=Text)
    lms_user_id: str = Field(max_length=255)
    score_given: Optional[float] = None
    score_maximum: Optional[float] = None
    timestamp: datetime = Field(sa_type=UtcDateTime)
    status_code: Optional[int] = None
    response: Optional[str] = Field(default=None, sa_type=Text)
    row_digest: str = Field(default="", max_length=64)           # passback_digest(content)
    occurrence: int = 1                                          # Nth identical row of the export
    imported_at: Optional[datetime] = Field(default_factory=utcnow, sa_type=UtcDateTime)


# Rows written through the ORM (tests, scripts) get the same derived keys as the importer's bulk path.
@event.listens_for(Completion, "before_insert")
@event.listens_for(Completion, "before_update")
def _completion_launch_context(_mapper, _connection, target: Completion) -> None:
    target.launch_context = launch_context_key(target.platform, target.context_id)


@event.listens_for(Passback, "before_insert")
def _passback_digest(_mapper, _connection, target: Passback) -> None:
    if not target.row_digest:
        target.row_digest = passback_digest({c: getattr(target, c) for c in PASSBACK_CONTENT})


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
