"""What a vendor profile is: its error tables and its paging / page-size / filter / scope quirks.

Each vendor module (canvas, moodle, blackboard, d2l, generic) builds one `VendorProfile`; the client
looks the profile up once and never branches on the vendor elsewhere. `classify` applies the
vendor's own rules first, then the spec-level defaults shared by all vendors (below); the token
endpoint's refusals are read the same way by `token_refusal` (vendor `token_rules`, then defaults).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from lti_client.types import CredentialFault, Endpoint, ErrorKind, Score, TokenRefusal

READ_ENDPOINTS = frozenset({Endpoint.line_items, Endpoint.results, Endpoint.memberships})
ALL_ENDPOINTS = frozenset(Endpoint)


def blank_body(body: str) -> bool:
    """True when an answer carries no text: empty, or JSON `[]`, `{}`, `null`, `""` (Moodle 5.1 sends
    its score refusals with body `[]` and the text in the reason phrase, lti-platform-behavior.md §10)."""
    stripped = (body or "").strip()
    if not stripped:
        return True
    if stripped[0] not in "[{n\"":
        return False
    try:
        return not json.loads(stripped)
    except ValueError:
        return False


@dataclass(frozen=True)
class ErrorRule:
    """One row of a vendor error table: endpoints × statuses × (optional) text → kind.

    `statuses=None` matches every non-2xx status; `contains` (any one of them) is matched
    case-insensitively against the body and the reason phrase (so it works for plain-text bodies,
    text inside JSON, and Moodle's reason-phrase-only refusals); `blank=True` matches only an answer
    whose body has no text. `note` says what the answer means, for the error message."""
    kind: ErrorKind
    endpoints: frozenset[Endpoint]
    statuses: frozenset[int] | None
    contains: tuple[str, ...] = ()
    blank: bool = False
    note: str | None = None

    def matches(self, status: int, text_lower: str, endpoint: Endpoint, is_blank: bool = False) -> bool:
        if endpoint not in self.endpoints:
            return False
        if self.statuses is not None and status not in self.statuses:
            return False
        if self.blank and not is_blank:
            return False
        return not self.contains or any(c.lower() in text_lower for c in self.contains)


def rule(kind: ErrorKind, endpoints: frozenset[Endpoint] | Endpoint, statuses: set[int] | None,
         contains: str | tuple[str, ...] | None = None, *, blank: bool = False, note: str | None = None) -> ErrorRule:
    """Shorthand for an `ErrorRule` (a single endpoint or a set of them; one text or several)."""
    eps = frozenset({endpoints}) if isinstance(endpoints, Endpoint) else frozenset(endpoints)
    texts = (contains,) if isinstance(contains, str) else tuple(contains or ())
    return ErrorRule(kind, eps, frozenset(statuses) if statuses is not None else None, texts, blank, note)


@dataclass(frozen=True)
class TokenRule:
    """One row of a token-refusal table: OAuth `error` codes × text in error/description → meaning.

    `codes=None` matches any code; `patterns` (any one of them: case-insensitive regular expressions,
    so `\\biat\\b` does not match "associated") are searched in the `error` value and the description
    together (Moodle writes php-jwt's message into `error`, §1.5)."""
    refusal: TokenRefusal
    fault: CredentialFault | None
    codes: frozenset[str] | None = None
    patterns: tuple[str, ...] = ()

    def matches(self, code: str, text: str) -> bool:
        if self.codes is not None and code not in self.codes:
            return False
        return not self.patterns or any(re.search(p, text, re.IGNORECASE) for p in self.patterns)


def token_rule(refusal: TokenRefusal, fault: CredentialFault | None, codes: set[str] | str | None = None,
               patterns: str | tuple[str, ...] = ()) -> TokenRule:
    """Shorthand for a `TokenRule`."""
    code_set = frozenset({codes}) if isinstance(codes, str) else (frozenset(codes) if codes is not None else None)
    return TokenRule(refusal, fault, code_set, (patterns,) if isinstance(patterns, str) else tuple(patterns))


_REJECTED = TokenRefusal.credentials_rejected
# Spec-level token refusals (RFC 6749 §5.2, RFC 7523 §3.1), applied after the vendor's rows. Only
# invalid_scope is about the tool's grade configuration (design.md grades_not_accepted); every other
# refusal rejects the credentials, and the message says which one (the fix to name).
DEFAULT_TOKEN_RULES: tuple[TokenRule, ...] = (
    token_rule(TokenRefusal.scope_refused, None, "invalid_scope"),
    token_rule(_REJECTED, CredentialFault.key_file, "key_unreadable"),
    # Canvas "the JWT has expired", "the 'iat' must be less than 300 seconds old" (§1.2, §1.5);
    # php-jwt "Expired token", "Cannot handle token prior to …" (Moodle, §1.5).
    token_rule(_REJECTED, CredentialFault.clock, None, (r"\bexpired?\b", r"\biat\b", r"\bexp\b", r"\bnbf\b",
                                                        r"prior to", r"in the future", r"too old", r"not yet valid")),
    token_rule(_REJECTED, CredentialFault.audience, None, (r"\baud\b", r"audience")),
    token_rule(_REJECTED, CredentialFault.key, None, (r"signature", r"\bkid\b", r"\bjwks?\b", r"public key",
                                                      r"keyset", r"\bkeys?\b")),
    token_rule(_REJECTED, CredentialFault.client, {"invalid_client", "unauthorized_client"}),
    token_rule(_REJECTED, CredentialFault.request, {"unsupported_grant_type"}),
    token_rule(_REJECTED, CredentialFault.unknown),
)

# Spec-level defaults, applied after the vendor's rows. Numeric statuses only, never reason phrases
# (HTTP/2 has none: lti-platform-behavior.md §6.4, §7 #26); a vendor row may read a reason phrase
# as text, but no meaning may depend on it alone.
DEFAULT_RULES: tuple[ErrorRule, ...] = (
    rule(ErrorKind.throttled, ALL_ENDPOINTS, {429}),                 # §6.2, §6.4
    # The token endpoint refusing (RFC 6749 §5.2: 400, or 401 for invalid_client) is an OAuth refusal
    # (§1.5); what it means (scope refused vs credentials rejected) is `token_refusal`'s table.
    rule(ErrorKind.auth, Endpoint.token, set(range(400, 500))),
    # A course endpoint answering 401 (after one refresh) / 403 / 404 / 422 = the course is unreachable
    # (diagnosis-rules "course_unreachable"; an error on results counts as one of the course).
    rule(ErrorKind.course_unreachable, READ_ENDPOINTS, {401, 403, 404, 422}),
    # Score POST: 401/403/404 "on the course" make the course unverified (diagnosis-rules, resync).
    rule(ErrorKind.course_unreachable, Endpoint.scores, {401, 403, 404}),
)


def _default_score_extensions(score: Score) -> dict:
    return {}


def _verbatim(url: str) -> str:
    return url


@dataclass(frozen=True)
class VendorProfile:
    """One vendor's quirks, each with its source in the profile module."""
    name: str
    error_rules: tuple[ErrorRule, ...]
    # Page size sent as `limit` per listing endpoint; None = send no limit (the platform's default).
    page_sizes: Mapping[Endpoint, int | None]
    # Listings that must never carry `limit`, whatever the registration's page_size says.
    never_paged: frozenset[Endpoint] = frozenset()
    # Query parameter name(s) that carry the resource_link_id filter of the line-items container.
    resource_link_params: tuple[str, ...] = ("resource_link_id",)
    # False: the results `user_id` filter is unreliable here; fetch all and filter client side.
    server_side_user_filter: bool = True
    default_concurrency: int = 4
    # Below this `X-Rate-Limit-Remaining` the client paces its requests; None = ignore the header.
    rate_limit_low_water: float | None = None
    # Bucket units one request holds while in flight, when `X-Rate-Limit-Remaining` counts them (Canvas):
    # then remaining ÷ cost = how many more may be in flight (limiter.py); None = the header is not that.
    rate_limit_request_cost: float | None = None
    # Vendor extension properties merged into a score POST body when vendor_extensions=True.
    score_extensions: Callable[[Score], dict] = field(default=_default_score_extensions)
    # Body `nextPage` link of a memberships container (older Moodle LIS format, §5.3).
    body_next_page_key: str | None = None
    # The platform stores a score's timestamp at whole seconds and refuses `stored >= sent` (Moodle,
    # §4.3, §10): two sends in one second collide. Elsewhere the stored time keeps milliseconds.
    whole_second_timestamps: bool = False
    # A Link target as the platform writes it → the URL to request (Moodle HTML-escapes `&`, §10).
    link_target: Callable[[str], str] = field(default=_verbatim)
    # Token refusals in this vendor's words, read before DEFAULT_TOKEN_RULES.
    token_rules: tuple[TokenRule, ...] = ()
    # True: one scope the key lacks fails the whole token request (Canvas, §1.6), so the read scopes
    # are asked for again in smaller sets; False: the platform grants the subset it allows (Moodle).
    scopes_all_or_nothing: bool = True


def match_rule(profile: VendorProfile, status: int, body: str, endpoint: Endpoint,
               reason: str = "") -> ErrorRule | None:
    """The first row (vendor's, then DEFAULT_RULES) that matches a non-2xx answer, or None."""
    text_lower = f"{body or ''}\n{reason or ''}".lower()
    is_blank = blank_body(body)
    for r in profile.error_rules + DEFAULT_RULES:
        if r.matches(status, text_lower, endpoint, is_blank):
            return r
    return None


def classify_with(profile: VendorProfile, status: int, body: str, endpoint: Endpoint,
                  reason: str = "") -> ErrorKind:
    """The error kind of a non-2xx answer: the vendor's rows first, then DEFAULT_RULES; 5xx is
    transient everywhere; anything else is `other`. `reason` is the HTTP reason phrase when the
    platform sent a non-standard one (Moodle's refusal text, §10); no rule needs it."""
    return kind_of(match_rule(profile, status, body, endpoint, reason), status)


def kind_of(matched: ErrorRule | None, status: int) -> ErrorKind:
    """The kind a matched row gives; without one, 5xx is transient and anything else `other`."""
    if matched is not None:
        return matched.kind
    return ErrorKind.transient if status >= 500 else ErrorKind.other


def token_refusal(profile: VendorProfile, error_type: str | None,
                  message: str) -> tuple[TokenRefusal, CredentialFault | None]:
    """What a 4xx token answer (OAuth `error` code and description) means: the vendor's token rows
    first, then DEFAULT_TOKEN_RULES."""
    code = (error_type or "").strip().lower()
    text = f"{error_type or ''}\n{message or ''}"
    for r in profile.token_rules + DEFAULT_TOKEN_RULES:
        if r.matches(code, text):
            return r.refusal, r.fault
    return TokenRefusal.credentials_rejected, CredentialFault.unknown      # unreachable: last row matches all
