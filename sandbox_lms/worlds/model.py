"""The records of a world: the tool's side (rows of design.md's CSVs) and the planted ground truth.

Tool-side rows are kept as small typed records; URLs (lineitems_url, line_item_id, Canvas resultUrl)
depend on where the sandbox listens and are rendered only when `World.tool_records(base_url)` asks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sandbox_lms.worlds.answers import Outcome

# docs/diagnosis-rules.md: precedence order, first wins.
CATEGORIES: tuple[str, ...] = (
    "grades_not_accepted", "course_unreachable", "link_not_graded", "item_not_active", "not_learner",
    "duplicate_account", "launched_outside_course", "outside_course_dates", "manual_grade_conflict",
    "score_mismatch", "missing_in_lms",
)
COURSE_LEVEL = frozenset({"grades_not_accepted", "course_unreachable"})
ITEM_LEVEL = frozenset({"link_not_graded", "item_not_active"})


@dataclass(frozen=True)
class PlantedFinding:
    """One expected finding, decided before its data was built."""
    category: str
    platform: str
    context_id: str
    resource_link_id: str | None = None
    lms_user_id: str | None = None
    account_id: str | None = None
    note: str = ""

    @property
    def level(self) -> str:
        """course | item | learner"""
        if self.category in COURSE_LEVEL:
            return "course"
        return "item" if self.category in ITEM_LEVEL else "learner"

    @property
    def identity(self) -> str:
        """`category|platform|context_id|resource_link_id|lms_user_id` (docs/diagnosis-rules.md)."""
        rl = self.resource_link_id if self.level != "course" else None
        user = self.lms_user_id if self.level == "learner" else None
        return f"{self.category}|{self.platform}|{self.context_id}|{rl or ''}|{user or ''}"


@dataclass(slots=True)
class ToolCourse:
    platform: str
    context_id: str
    title: str
    deployment_id: str
    starts_at: datetime
    ends_at: datetime
    utc_offset_h: int = 0                 # the zone the tool writes this course's dates in


@dataclass(slots=True)
class Account:
    account_id: str
    email: str
    name: str
    origin: str                           # lti | manual


@dataclass(slots=True)
class Identity:
    account_id: str
    platform: str
    lms_user_id: str


@dataclass(slots=True)
class Link:
    platform: str
    context_id: str
    resource_link_id: str
    activity_id: str
    title: str
    graded: bool


@dataclass(slots=True)
class Completion:
    account_id: str
    activity_id: str
    score_given: float
    score_maximum: float
    completed_at: datetime
    platform: str | None = None           # None (with context and link) after a manual login
    context_id: str | None = None
    resource_link_id: str | None = None


@dataclass(slots=True)
class Passback:
    """One score POST the tool made; status and body are rendered from `outcome` per vendor."""
    account_id: str
    platform: str
    context_id: str
    resource_link_id: str
    item_id: int
    lms_user_id: str
    score_given: float
    score_maximum: float
    timestamp: datetime
    outcome: Outcome
    stored_at: datetime | None = None     # for a stale refusal: the platform's stored time it lost to
    no_link: bool = False                 # logged without a resource link (a tool-created line item's post)


@dataclass
class ToolRecords:
    """The tool's side of a world, before rendering."""
    courses: list[ToolCourse] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    identities: list[Identity] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    completions: dict[tuple[str, str], Completion] = field(default_factory=dict)  # (account, activity)
    # Further completions of an (account, activity) already in `completions`, launched from another
    # course (a retake term, a cross-listed section): design.md "one per account + activity + launch context".
    extra_completions: list[Completion] = field(default_factory=list)
    passbacks: dict[tuple[str, str, str, str], list[Passback]] = field(default_factory=dict)  # (P, C, rl, user)

    def log(self, p: Passback) -> None:
        """Append one passback to the log of its (platform, context, link, user) cell."""
        self.passbacks.setdefault((p.platform, p.context_id, p.resource_link_id, p.lms_user_id), []).append(p)


def iso(ts: datetime, offset_h: int = 0, *, ms: bool = False) -> str:
    """ISO 8601 with an explicit zone (design.md: timestamps with zone)."""
    zone = timezone(timedelta(hours=offset_h)) if offset_h else timezone.utc
    return ts.astimezone(zone).isoformat(timespec="milliseconds" if ms else "seconds")


def num(x: float) -> str:
    """A score as the tool writes it: `8`, `8.5`, `0`."""
    if x == int(x):
        return str(int(x))
    return repr(round(x, 6))
