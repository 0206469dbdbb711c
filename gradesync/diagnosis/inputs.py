"""What the diagnosis reads: the tool's records and the LMS snapshot of one course, as plain data."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from lti_client.types import LineItem, LtiErrorInfo, Member, Result, TokenGrant


@dataclass(frozen=True)
class CourseInfo:
    platform: str
    context_id: str
    title: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None


@dataclass(frozen=True)
class LinkInfo:
    resource_link_id: str
    activity_id: str
    graded: bool
    title: str | None = None


@dataclass(frozen=True)
class Completion:
    account_id: str
    activity_id: str
    score_given: float
    score_maximum: float
    completed_at: datetime
    platform: str | None = None
    context_id: str | None = None
    resource_link_id: str | None = None

    @property
    def normalised(self) -> float:
        return self.score_given / self.score_maximum


@dataclass(frozen=True)
class Passback:
    """One line of the tool's grade-passback log."""
    lms_user_id: str
    resource_link_id: str
    score_given: float | None
    score_maximum: float | None
    timestamp: datetime
    status_code: int
    response: str = ""
    account_id: str | None = None
    line_item_id: str | None = None

    @property
    def accepted(self) -> bool:
        return 200 <= self.status_code < 300


@dataclass
class PlatformRecords:
    """The tool's records for one platform, indexed once and shared by all its courses."""
    platform: str
    vendor: str
    account_email: dict[str, str] = field(default_factory=dict)              # account_id → lower-cased email
    accounts_by_email: dict[str, list[str]] = field(default_factory=dict)    # lower-cased email → account ids
    account_by_lms_user: dict[str, str] = field(default_factory=dict)        # lms_user_id → account_id (identities)
    lms_user_by_account: dict[str, str] = field(default_factory=dict)        # account_id → lms_user_id on this platform
    completions: dict[str, dict[str, Completion]] = field(default_factory=dict)  # activity_id → account_id → completion
    # (context_id, activity_id) → account ids whose completion carries this platform's course context: a
    # course reads only its own, not every completion of an activity shared by many courses.
    completed_in_context: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, platform: str, vendor: str, accounts: list[tuple[str, str | None]],
              identities: list[tuple[str, str]], completions: list[Completion]) -> "PlatformRecords":
        """accounts: (account_id, email); identities: (account_id, lms_user_id) on this platform."""
        rec = cls(platform=platform, vendor=vendor)
        by_email: dict[str, list[str]] = defaultdict(list)
        for account_id, email in accounts:
            if email:
                e = email.strip().lower()
                rec.account_email[account_id] = e
                by_email[e].append(account_id)
        rec.accounts_by_email = dict(by_email)
        for account_id, lms_user_id in identities:
            rec.account_by_lms_user[lms_user_id] = account_id
            rec.lms_user_by_account[account_id] = lms_user_id
        comps: dict[str, dict[str, Completion]] = defaultdict(dict)
        in_context: dict[tuple[str, str], list[str]] = defaultdict(list)
        for c in completions:
            comps[c.activity_id][c.account_id] = c
            if c.platform == platform and c.context_id:
                in_context[(c.context_id, c.activity_id)].append(c.account_id)
        rec.completions = dict(comps)
        rec.completed_in_context = dict(in_context)
        return rec

    def same_person_accounts(self, account_id: str) -> list[str]:
        """Other accounts with the same email (case-insensitive), excluding account_id itself."""
        email = self.account_email.get(account_id)
        if not email:
            return []
        return [a for a in self.accounts_by_email.get(email, []) if a != account_id]


@dataclass
class CourseRecords:
    """The tool's records for one course."""
    course: CourseInfo
    links: list[LinkInfo]
    passbacks: list[Passback] = field(default_factory=list)


@dataclass
class CourseSnapshot:
    """What the LMS showed for one course in this run. `error` set ⇒ extraction failed."""
    line_items: list[LineItem] = field(default_factory=list)
    results: dict[str, list[Result]] = field(default_factory=dict)     # line item id → results
    members: list[Member] = field(default_factory=list)
    error: LtiErrorInfo | None = None
    # line item id → why its results could not be read (e.g. Moodle's 404 HTML page on results paging,
    # lti-platform-behavior.md §10): that item is unverified, the rest of the course is audited.
    item_errors: dict[str, LtiErrorInfo] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoreGrant:
    """Whether the platform lets the tool send scores; `unavailable` ⇒ we could not find out."""
    granted: bool
    detail: str = ""
    unavailable: bool = False

    @classmethod
    def from_token_grant(cls, grant: TokenGrant, score_scope: str) -> "ScoreGrant":
        if grant.error is not None:
            return cls(False, f"token endpoint refused the score scope: {grant.error.error_type or ''} "
                              f"{grant.error.message}".strip())
        if not grant.has(score_scope):
            return cls(False, "token granted without the AGS score scope "
                              f"(granted: {' '.join(sorted(grant.granted)) or 'nothing'})")
        return cls(True)
