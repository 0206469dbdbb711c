"""What the diagnosis reads: the tool's records and the LMS snapshot of one course, as plain data."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from lti_client.types import ErrorKind, LineItem, LtiErrorInfo, Member, Result, TokenGrant, TokenRefusal


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
    """One line of the tool's grade-passback log (append-only: a retried POST is another line), or one
    of gradesync's own resync sends. `status_code` None = no answer (timed out); `resource_link_id`
    None = a POST to a tool-created line item with no resource link (then `line_item_id` says where)."""
    lms_user_id: str
    resource_link_id: str | None
    score_given: float | None
    score_maximum: float | None
    timestamp: datetime
    status_code: int | None
    response: str = ""
    account_id: str | None = None
    line_item_id: str | None = None
    # Set on gradesync's own resync sends: the attempt's outcome (e.g. "failed:accepted_not_shown").
    resync_outcome: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def normalised(self) -> float | None:
        if self.score_given is None or not self.score_maximum:
            return None
        return self.score_given / self.score_maximum


@dataclass
class PlatformRecords:
    """The tool's records for one platform, indexed once and shared by all its courses."""
    platform: str
    vendor: str
    account_email: dict[str, str] = field(default_factory=dict)              # account_id → lower-cased email
    accounts_by_email: dict[str, list[str]] = field(default_factory=dict)    # lower-cased email → account ids
    account_by_lms_user: dict[str, str] = field(default_factory=dict)        # lms_user_id → account_id (identities)
    lms_user_by_account: dict[str, str] = field(default_factory=dict)        # account_id → lms_user_id on this platform
    # activity_id → account_id → that account's completions of the activity, one per launch context
    # (a retake term, cross-listed sections, a manual login): design.md "Inputs" 2.
    completions: dict[str, dict[str, list[Completion]]] = field(default_factory=dict)
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
            e = normalise_email(email)
            if e:
                rec.account_email[account_id] = e
                by_email[e].append(account_id)
        rec.accounts_by_email = dict(by_email)
        for account_id, lms_user_id in identities:
            rec.account_by_lms_user[lms_user_id] = account_id
            rec.lms_user_by_account[account_id] = lms_user_id
        comps: dict[str, dict[str, list[Completion]]] = defaultdict(lambda: defaultdict(list))
        in_context: dict[tuple[str, str], list[str]] = defaultdict(list)
        for c in completions:
            comps[c.activity_id][c.account_id].append(c)
            if c.platform == platform and c.context_id and c.account_id not in in_context[(c.context_id, c.activity_id)]:
                in_context[(c.context_id, c.activity_id)].append(c.account_id)
        rec.completions = {a: dict(by_acc) for a, by_acc in comps.items()}
        rec.completed_in_context = dict(in_context)
        return rec

    def completion_for_course(self, activity_id: str, account_id: str, context_id: str) -> Completion | None:
        """The account's completion of the activity that counts for this course: the one launched from
        the course, else the latest (design.md "Which grades are expected")."""
        mine = self.completions.get(activity_id, {}).get(account_id)
        if not mine:
            return None
        here = [c for c in mine if c.platform == self.platform and c.context_id == context_id]
        return max(here or mine, key=lambda c: c.completed_at)

    def same_person_accounts(self, account_id: str | None, roster_email: str | None = None) -> list[str]:
        """Other accounts of the same person: the same email (case-insensitive) as `account_id`'s, or as
        the roster's own email (NRPS `email`) — excluding account_id itself."""
        emails = {e for e in (self.account_email.get(account_id or ""), normalise_email(roster_email)) if e}
        out: list[str] = []
        for e in sorted(emails):
            out += [a for a in self.accounts_by_email.get(e, []) if a != account_id and a not in out]
        return out


def normalise_email(email: str | None) -> str | None:
    """Emails compare case-insensitively, ignoring surrounding blanks; empty = none."""
    e = (email or "").strip().lower()
    return e or None


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
    # line item ids whose results were deliberately not read tonight: no expected grade and no passback
    # concerns them (gradesync/diagnosis/wanted.py). Not an error and not unverified: nothing to check.
    results_not_read: frozenset[str] = frozenset()


# The reason prefix of a course left unverified because the platform refused the tool's credentials
# (alerts raise one "credentials rejected" incident per platform from it).
CREDENTIALS_REJECTED = "credentials rejected"
# OAuth `error` codes (RFC 6749 §5.2) that refuse a scope rather than the client: lti-platform-behavior.md §1.5–1.6.
_SCOPE_REFUSALS = frozenset({"invalid_scope"})


@dataclass(frozen=True)
class ScoreGrant:
    """Whether the platform lets the tool send scores; `unavailable` ⇒ we could not find out (the
    token endpoint failed, or refused the tool's credentials: `credentials_rejected`)."""
    granted: bool
    detail: str = ""
    unavailable: bool = False
    credentials_rejected: bool = False

    @classmethod
    def from_token_grant(cls, grant: TokenGrant, score_scope: str) -> "ScoreGrant":
        """Only a refused or missing score scope means "grades not accepted" (design.md); a refused
        client, key, signature or clock (invalid_client, invalid_grant, invalid_request …) says nothing
        about grades: the courses are unverified and one incident names the fix."""
        err = grant.error
        if err is not None:
            return cls.from_error(err)
        if not grant.has(score_scope):
            return cls(False, "token granted without the AGS score scope "
                              f"(granted: {' '.join(sorted(grant.granted)) or 'nothing'})")
        return cls(True)

    @classmethod
    def from_error(cls, err: LtiErrorInfo) -> "ScoreGrant":
        """The grant implied by a token endpoint error: the client says what the refusal means
        (`LtiErrorInfo.refusal`, from each vendor's token rows); the OAuth code decides when it did not."""
        text = f"{err.error_type or ''} {err.message}".strip()
        refusal = err.refusal
        if refusal is None:
            if (err.error_type or "").lower() in _SCOPE_REFUSALS:
                refusal = TokenRefusal.scope_refused
            elif err.kind in (ErrorKind.transient, ErrorKind.throttled, ErrorKind.malformed) \
                    or (err.status or 0) >= 500:
                refusal = TokenRefusal.unavailable
            else:
                refusal = TokenRefusal.credentials_rejected
        if refusal is TokenRefusal.scope_refused:
            return cls(False, f"token endpoint refused the score scope: {text}")
        if refusal is TokenRefusal.unavailable:
            return cls(False, f"token endpoint unavailable: {text}", unavailable=True)
        fix = f"; fix: {err.credential_fault.fix}" if err.credential_fault is not None else ""
        status = f" ({err.status})" if err.status else ""
        return cls(False, f"{CREDENTIALS_REJECTED} by the token endpoint{status}: {text}{fix}",
                   unavailable=True, credentials_rejected=True)
