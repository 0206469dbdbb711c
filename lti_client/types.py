"""What the client returns: small typed records, independent of our tables and of Prefect."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
READ_SCOPES = frozenset({SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY, SCOPE_NRPS})

ROLE_LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"


@dataclass(frozen=True)
class LineItem:
    id: str                                  # the platform's URL id, verbatim (may carry ?type_id=)
    label: str | None
    score_maximum: float | None
    resource_link_id: str | None = None
    resource_id: str | None = None
    tag: str | None = None
    start_date_time: datetime | None = None
    end_date_time: datetime | None = None


@dataclass(frozen=True)
class Result:
    id: str | None
    score_of: str | None
    user_id: str | None
    result_score: float | None
    result_maximum: float = 1.0              # spec default when absent
    scoring_user_id: str | None = None
    comment: str | None = None
    timestamp: datetime | None = None        # non-standard (Moodle); None on Canvas and the spec


@dataclass(frozen=True)
class Member:
    user_id: str
    roles: tuple[str, ...]
    status: str = "Active"                   # missing ⇒ Active (NRPS spec)
    name: str | None = None
    email: str | None = None
    given_name: str | None = None
    family_name: str | None = None

    @property
    def is_learner(self) -> bool:
        # Context role Learner, full URI or the short form the spec allows for context roles.
        return any(r == ROLE_LEARNER or r == "Learner" for r in self.roles)

    @property
    def is_active(self) -> bool:
        return self.status == "Active"


@dataclass(frozen=True)
class Score:
    """A score POST body, in our terms; the client serialises it (0 is sent as 0, never dropped)."""
    user_id: str
    score_given: float
    score_maximum: float
    timestamp: datetime                      # must be fresh and strictly increasing per (item, user)
    activity_progress: str = "Completed"
    grading_progress: str = "FullyGraded"
    submitted_at: datetime | None = None
    comment: str | None = None
    # Leave a grade a person entered in the LMS in place (Canvas `prioritize_non_tool_grade`, §4.2).
    # True unless the send is an approved supersede of a manual grade.
    keep_non_tool_grade: bool = True


@dataclass(frozen=True)
class TokenGrant:
    """Which requested scopes the token endpoint granted. `error` is set when it refused outright."""
    requested: frozenset[str]
    granted: frozenset[str]
    error: "LtiErrorInfo | None" = None

    def has(self, scope: str) -> bool:
        return scope in self.granted


class ErrorKind(str, Enum):
    """What an LMS error means for the audit, decided by the vendor's error table."""
    item_inactive = "item_inactive"          # e.g. Canvas 422 "unpublished"
    not_learner = "not_learner"              # user not gradable in the course
    stale_timestamp = "stale_timestamp"      # Canvas 400 "before last updated", Moodle 409
    course_unreachable = "course_unreachable"  # 401/403/404/422 on a course endpoint
    auth = "auth"                            # token endpoint refused (OAuth error)
    throttled = "throttled"                  # 429, Canvas 403 "Rate Limit Exceeded"
    transient = "transient"                  # 5xx, timeout, connection error
    malformed = "malformed"                  # unparsable body
    paging_loop = "paging_loop"
    unsafe_url = "unsafe_url"                # refused before sending: host not allowed
    other = "other"


@dataclass(frozen=True)
class LtiErrorInfo:
    kind: ErrorKind
    status: int | None
    error_type: str | None
    message: str
    url: str | None                          # never carries a token


@dataclass
class RequestStats:
    """Per-platform accounting: requests by kind, retries, throttle waits."""
    requests: dict[str, int] = field(default_factory=dict)   # token, line_items, results, memberships, scores
    retries: int = 0
    throttled: int = 0
    throttle_wait_s: float = 0.0

    def count(self, kind: str) -> None:
        self.requests[kind] = self.requests.get(kind, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.requests.values())


class Endpoint(str, Enum):
    """Which kind of LMS endpoint a request went to; also the key of `RequestStats.requests`.
    The vendor error tables read it: the same status means different things on different endpoints."""
    token = "token"
    line_items = "line_items"
    results = "results"
    memberships = "memberships"
    scores = "scores"
