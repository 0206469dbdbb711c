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

    def refusal_for(self, scope: str) -> "TokenRefusal | None":
        """Why `scope` is not usable (None: it was granted). A refusal is `error.refusal`; a grant
        that silently left `scope` out (Moodle grants a subset, lti-platform-behavior.md §1.6) is
        `scope_refused`."""
        if self.error is not None:
            return self.error.refusal or TokenRefusal.credentials_rejected
        return None if self.has(scope) else TokenRefusal.scope_refused


class TokenRefusal(str, Enum):
    """What a token endpoint's "no" means for the audit (issue 10 §3, design.md "grades_not_accepted").

    Only `scope_refused` says something about the tool's grade configuration; `credentials_rejected`
    says the platform does not accept *who we are* (key, client_id, clock, audience) and makes every
    course of the platform unverified; `unavailable` means we could not find out this time."""
    scope_refused = "scope_refused"                # OAuth invalid_scope, or a grant without the scope
    credentials_rejected = "credentials_rejected"  # invalid_client / invalid_grant / bad assertion …
    unavailable = "unavailable"                    # 5xx, timeout, throttled, unparsable token answer


class CredentialFault(str, Enum):
    """Which credential a `credentials_rejected` refusal points at, i.e. what to fix (`fix`)."""
    key = "key"                      # signature invalid, unknown kid, key not in the JWKS
    key_or_client = "key_or_client"  # the platform reports both the same way (Canvas, D2L)
    client = "client"                # unknown client_id, iss ≠ client_id
    clock = "clock"                  # iat / exp refused: clock skew
    audience = "audience"            # aud refused
    key_file = "key_file"            # our own private key file is unreadable (nothing was sent)
    request = "request"              # malformed / unsupported token request
    unknown = "unknown"

    @property
    def fix(self) -> str:
        """The fix to name in a "credentials rejected" incident."""
        return _CREDENTIAL_FIXES[self]


_CREDENTIAL_FIXES = {
    CredentialFault.key: "the platform cannot verify the tool's signature: the key was rotated or the "
                         "platform holds another public key / JWKS (check the key id)",
    CredentialFault.key_or_client: "the platform cannot verify the tool's assertion: check the registration's "
                                   "key (rotated? public key / JWKS on the platform, key id) and its client_id",
    CredentialFault.client: "the platform does not know this client_id (or iss differs from it): check the "
                            "registration's client_id and that the tool is still registered",
    CredentialFault.clock: "the platform refused the assertion's time (iat/exp): fix the tool server's clock (NTP)",
    CredentialFault.audience: "the platform refused the assertion's audience: check the registration's "
                              "token_url / audience",
    CredentialFault.key_file: "the tool's private key file cannot be read or used: fix private_key_file",
    CredentialFault.request: "the platform refused the token request itself: check the token URL and the "
                             "registration",
    CredentialFault.unknown: "the platform refused the tool's credentials: check key, client_id and clock",
}


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
    error_type: str | None                   # OAuth `error` code on the token endpoint
    message: str
    url: str | None                          # never carries a token
    # Token endpoint errors only: what the refusal means and, when credentials were rejected, which.
    refusal: TokenRefusal | None = None
    credential_fault: CredentialFault | None = None


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
