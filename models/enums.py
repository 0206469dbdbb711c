"""Closed vocabularies stored as strings (VARCHAR, not native PostgreSQL enums, so adding a value is a
plain migration)."""
from __future__ import annotations

from enum import Enum

from sqlalchemy import Enum as SAEnum


class FindingCategory(str, Enum):
    """The 11 causes of design.md, in precedence order (the first that applies wins)."""

    grades_not_accepted = "grades_not_accepted"
    course_unreachable = "course_unreachable"
    link_not_graded = "link_not_graded"
    item_not_active = "item_not_active"
    not_learner = "not_learner"
    duplicate_account = "duplicate_account"
    launched_outside_course = "launched_outside_course"
    outside_course_dates = "outside_course_dates"
    manual_grade_conflict = "manual_grade_conflict"
    score_mismatch = "score_mismatch"
    missing_in_lms = "missing_in_lms"


class ResyncState(str, Enum):
    """pending → (needs_approval → approved →) claimed → sent → verified; or failed / refused / cancelled."""

    pending = "pending"
    needs_approval = "needs_approval"
    approved = "approved"
    claimed = "claimed"
    sent = "sent"
    verified = "verified"
    failed = "failed"
    refused = "refused"
    cancelled = "cancelled"


# A task in one of these states still owns its (platform, line_item_id, lms_user_id): at most one may exist.
OPEN_RESYNC_STATES: tuple[ResyncState, ...] = (
    ResyncState.pending, ResyncState.needs_approval, ResyncState.approved, ResyncState.claimed,
    ResyncState.sent,
)


def str_enum(enum_cls: type[Enum], name: str) -> SAEnum:
    """A VARCHAR column holding the enum's *values*, returned as enum members."""
    return SAEnum(enum_cls, name=name, native_enum=False, create_constraint=False, length=32,
                  values_callable=lambda e: [m.value for m in e], validate_strings=True)
