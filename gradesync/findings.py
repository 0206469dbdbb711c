"""Findings and run summaries as plain records: what diagnosis produces and reports/alerts consume."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# design.md order = precedence: where several apply, the first wins.
CATEGORIES: tuple[str, ...] = (
    "grades_not_accepted", "course_unreachable", "link_not_graded", "item_not_active", "not_learner",
    "duplicate_account", "launched_outside_course", "outside_course_dates", "manual_grade_conflict",
    "score_mismatch", "missing_in_lms",
)
COURSE_LEVEL = frozenset({"grades_not_accepted", "course_unreachable"})
ITEM_LEVEL = frozenset({"link_not_graded", "item_not_active"})
RESYNCABLE = frozenset({"missing_in_lms", "score_mismatch"})        # resync task created as pending
NEEDS_APPROVAL = frozenset({"manual_grade_conflict"})                # resync only after approval


def level_of(category: str) -> str:
    """course | item | learner"""
    return "course" if category in COURSE_LEVEL else "item" if category in ITEM_LEVEL else "learner"


def identity_of(category: str, platform: str, context_id: str, resource_link_id: str | None = None,
                lms_user_id: str | None = None) -> str:
    """Stable identity of a finding across runs (docs/diagnosis-rules.md)."""
    lvl = level_of(category)
    rl = resource_link_id if lvl != "course" else None
    user = lms_user_id if lvl == "learner" else None
    return f"{category}|{platform}|{context_id}|{rl or ''}|{user or ''}"


@dataclass(frozen=True)
class Finding:
    category: str
    platform: str
    context_id: str
    action: str
    resource_link_id: str | None = None
    activity_id: str | None = None
    line_item_id: str | None = None
    account_id: str | None = None
    lms_user_id: str | None = None
    tool_score: float | None = None
    tool_maximum: float | None = None
    lms_score: float | None = None
    lms_maximum: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def level(self) -> str:
        return level_of(self.category)

    @property
    def identity(self) -> str:
        return identity_of(self.category, self.platform, self.context_id, self.resource_link_id, self.lms_user_id)


@dataclass(frozen=True)
class CourseStatus:
    platform: str
    context_id: str
    status: str                       # audited | unverified
    reason: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class DataQualityWarning:
    """A failed expectation of an LMS data suite (lms_line_items, lms_results, lms_roster)."""
    suite: str
    expectation: str
    platform: str
    context_id: str
    unexpected_count: int
    sample: list[Any] = field(default_factory=list, hash=False, compare=False)


@dataclass
class RunSummary:
    """One audit run as alerts and the report see it."""
    run_id: int
    kind: str                                            # nightly | course-audit
    started_at: datetime
    finished_at: datetime | None
    state: str                                           # completed | partial | failed
    courses: list[CourseStatus]
    findings: list[Finding]
    new: set[str] = field(default_factory=set)           # identities not open in the previous run
    resolved: list[Finding] = field(default_factory=list)  # open in the previous run, gone now
    report_path: str | None = None
    request_stats: dict[str, Any] = field(default_factory=dict)
    dq_warnings: list[DataQualityWarning] = field(default_factory=list)
    expected_grades: dict[tuple[str, str], int] = field(default_factory=dict)   # (platform, context_id) → n expected
    present_grades: dict[tuple[str, str], int] = field(default_factory=dict)    # … of which the LMS has a result
    history: list[tuple[str, dict[str, int]]] = field(default_factory=list)     # (night ISO date, counts by category)
    alert_failures: list[str] = field(default_factory=list)
    # supersedes of manual grades approved since the previous audit: (approved_by, platform, task state)
    approvals: list[tuple[str, str, str]] = field(default_factory=list)
    # nightly: courses the night plan left out, reason → count (docs/night-reads.md)
    not_read: dict[str, int] = field(default_factory=dict)

    @property
    def still_open(self) -> list[Finding]:
        return [f for f in self.findings if f.identity not in self.new]

    @property
    def unverified(self) -> list[CourseStatus]:
        return [c for c in self.courses if c.status == "unverified"]
