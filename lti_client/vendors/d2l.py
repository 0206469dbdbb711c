"""D2L Brightspace: error table and quirks. Sections (§) are lti-platform-behavior.md.

The token audience (`https://api.brightspace.com/auth/token`, §1.3) is configuration: it is the
registration's `audience`, used by the assertion through `PlatformRegistration.token_audience`.
"""
from __future__ import annotations

from lti_client.types import CredentialFault, Endpoint, ErrorKind, TokenRefusal
from lti_client.vendors.base import VendorProfile, rule, token_rule

ERROR_RULES = (
    # Score POST refusals about the user, by their text — never the status alone (issue 10 §3): a 403
    # or 404 without it is a refusal of the course or the line item (default rows). D2L throttles
    # with 429, never 403 (§6.2).
    # 403 "User in requested score is not enrolled in the org unit" (§4.5, §7 #22; hypothesis _v13.py).
    rule(ErrorKind.not_learner, Endpoint.scores, {403}, "not enrolled in the org unit"),
    # 404 "User in requested score does not exist" (§4.5, §7 #22; hypothesis _v13.py).
    rule(ErrorKind.not_learner, Endpoint.scores, {404}, "user in requested score does not exist"),
    # 422 for a role without "Can be graded in Grades" (§4.5, D2L FAQ); the body's wording is
    # UNCONFIRMED, so it must at least speak of the role, that permission, or the score's user (not
    # just any "user": a 422 about `scoringUserId` is a malformed score, not a learner).
    rule(ErrorKind.not_learner, Endpoint.scores, {422}, ("role", "graded in grades", "user in requested score")),
)

TOKEN_RULES = (
    # invalid_client: iss ≠ client_id, or a key the JWKS does not hold (§1.3, §7 #23; D2L FAQ).
    token_rule(TokenRefusal.credentials_rejected, CredentialFault.key_or_client, "invalid_client"),
    # invalid_grant "Error validating assertion: …" (pylti1.3#43): the default rows read the detail
    # (aud, exp/iat, signature); without one it stays `unknown`.
)

PROFILE = VendorProfile(
    name="d2l",
    error_rules=ERROR_RULES,
    token_rules=TOKEN_RULES,
    # Whether D2L grants a subset or refuses the request is UNCONFIRMED (§1.6): asking again in smaller
    # sets after an invalid_scope costs a few token requests once per run, and is right either way.
    scopes_all_or_nothing=True,
    # Line items: at most 200 per response, the rest via Link rel=next (§2.5, §7 #24). Results and
    # NRPS page sizes are UNCONFIRMED (§2.6): 200 / 50 as hints (the spec lets the platform return fewer).
    page_sizes={Endpoint.line_items: 200, Endpoint.results: 200, Endpoint.memberships: 50},
    # Rate-limited like Brightspace APIs: 50,000 credits/min per app, 10 per call, 429 + Retry-After,
    # X-Rate-Limit-Remaining (§6.2). Slow down with fewer than 100 calls left in the minute.
    # The budget is per minute (5,000 calls), not per request in flight: no in-flight cap to derive,
    # and the header counts credits left in the minute, not in-flight costs (no rate_limit_request_cost).
    default_concurrency=8,
    rate_limit_low_water=1000.0,
)
