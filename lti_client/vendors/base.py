"""What a vendor profile is: its error table and its paging / page-size / filter quirks.

Each vendor module (canvas, moodle, blackboard, d2l, generic) builds one `VendorProfile`; the client
looks the profile up once and never branches on the vendor elsewhere. `classify` applies the
vendor's own rules first, then the spec-level defaults shared by all vendors (below).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from lti_client.types import Endpoint, ErrorKind, Score

READ_ENDPOINTS = frozenset({Endpoint.line_items, Endpoint.results, Endpoint.memberships})
ALL_ENDPOINTS = frozenset(Endpoint)


@dataclass(frozen=True)
class ErrorRule:
    """One row of a vendor error table: endpoints × statuses × (optional) body text → kind.

    `statuses=None` matches every non-2xx status; `contains` is matched case-insensitively against
    the raw body (so it also works for plain-text bodies and for text inside JSON)."""
    kind: ErrorKind
    endpoints: frozenset[Endpoint]
    statuses: frozenset[int] | None
    contains: str | None = None

    def matches(self, status: int, body_lower: str, endpoint: Endpoint) -> bool:
        if endpoint not in self.endpoints:
            return False
        if self.statuses is not None and status not in self.statuses:
            return False
        return self.contains is None or self.contains.lower() in body_lower


def rule(kind: ErrorKind, endpoints: frozenset[Endpoint] | Endpoint, statuses: set[int] | None,
         contains: str | None = None) -> ErrorRule:
    """Shorthand for an `ErrorRule` (a single endpoint or a set of them)."""
    eps = frozenset({endpoints}) if isinstance(endpoints, Endpoint) else frozenset(endpoints)
    return ErrorRule(kind, eps, frozenset(statuses) if statuses is not None else None, contains)


# Spec-level defaults, applied after the vendor's rows. Numeric statuses only, never reason phrases
# (HTTP/2 has none: lti-platform-behavior.md §6.4, §7 #26).
DEFAULT_RULES: tuple[ErrorRule, ...] = (
    rule(ErrorKind.throttled, ALL_ENDPOINTS, {429}),                 # §6.2, §6.4
    # The token endpoint refusing (RFC 6749 §5.2: 400, or 401 for invalid_client) is an OAuth refusal
    # (§1.5); diagnosis-rules: grades_not_accepted for the score scope.
    rule(ErrorKind.auth, Endpoint.token, set(range(400, 500))),
    # A course endpoint answering 401 (after one refresh) / 403 / 404 / 422 = the course is unreachable
    # (diagnosis-rules "course_unreachable"; an error on results counts as one of the course).
    rule(ErrorKind.course_unreachable, READ_ENDPOINTS, {401, 403, 404, 422}),
    # Score POST: 401/403/404 "on the course" make the course unverified (diagnosis-rules, resync).
    rule(ErrorKind.course_unreachable, Endpoint.scores, {401, 403, 404}),
)


def _default_score_extensions(score: Score) -> dict:
    return {}


@dataclass(frozen=True)
class VendorProfile:
    """One vendor's quirks, each with its source in the profile module."""
    name: str
    error_rules: tuple[ErrorRule, ...]
    # Page size sent as `limit` per listing endpoint; None = send no limit (the platform's default).
    page_sizes: Mapping[Endpoint, int | None]
    # Query parameter name(s) that carry the resource_link_id filter of the line-items container.
    resource_link_params: tuple[str, ...] = ("resource_link_id",)
    # False: the results `user_id` filter is unreliable here; fetch all and filter client side.
    server_side_user_filter: bool = True
    default_concurrency: int = 4
    # Below this `X-Rate-Limit-Remaining` the client paces its requests; None = ignore the header.
    rate_limit_low_water: float | None = None
    # Vendor extension properties merged into a score POST body when vendor_extensions=True.
    score_extensions: Callable[[Score], dict] = field(default=_default_score_extensions)
    # Body `nextPage` link of a memberships container (older Moodle LIS format, §5.3).
    body_next_page_key: str | None = None


def classify_with(profile: VendorProfile, status: int, body: str, endpoint: Endpoint) -> ErrorKind:
    """The error kind of a non-2xx answer: the vendor's rows first, then DEFAULT_RULES; 5xx is
    transient everywhere; anything else is `other`."""
    body_lower = (body or "").lower()
    for r in profile.error_rules + DEFAULT_RULES:
        if r.matches(status, body_lower, endpoint):
            return r.kind
    if status >= 500:
        return ErrorKind.transient
    return ErrorKind.other
