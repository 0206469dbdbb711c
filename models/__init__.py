"""gradesync's tables (SQLModel) and database helpers. Knows nothing of HTTP or Prefect.

Importing this package registers every table on `SQLModel.metadata` (Alembic's target).
"""
from models.alerts import AlertLog
from models.audit import AuditBatch, AuditRun, CourseAudit, Finding, LmsLineItem, LmsMember, LmsResult
from models.db import (
    UpsertCounts, bulk_upsert, current_revision, dispose_engine, make_engine, session_scope,
    upgrade_database,
)
from models.enums import OPEN_RESYNC_STATES, FindingCategory, ResyncState
from models.resync import ResyncAttempt, ResyncTask
from models.tool_records import (
    Account, Completion, Course, Identity, ImportBatch, ImportRejection, Link, Passback, Platform,
)
from models.types import UtcDateTime, utcnow

__all__ = [
    "Account", "AlertLog", "AuditBatch", "AuditRun", "Completion", "Course", "CourseAudit", "Finding", "FindingCategory",
    "Identity", "ImportBatch", "ImportRejection", "Link", "LmsLineItem", "LmsMember", "LmsResult",
    "OPEN_RESYNC_STATES", "Passback", "Platform", "ResyncAttempt", "ResyncState", "ResyncTask",
    "UpsertCounts", "UtcDateTime", "bulk_upsert", "current_revision", "dispose_engine", "make_engine",
    "session_scope", "upgrade_database", "utcnow",
]
