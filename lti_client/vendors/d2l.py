"""D2L Brightspace: error table and quirks. Sections (§) are lti-platform-behavior.md.

The token audience (`https://api.brightspace.com/auth/token`, §1.3) is configuration: it is the
registration's `audience`, used by the assertion through `PlatformRegistration.token_audience`.
"""
from __future__ import annotations

from lti_client.types import Endpoint, ErrorKind
from lti_client.vendors.base import VendorProfile, rule

ERROR_RULES = (
    # Score POST: 403 "…not enrolled in the org unit", 404 "…does not exist", 422 role not gradeable
    # (§4.5, §7 #22; hypothesis _v13.py). D2L throttles with 429, never 403 (§6.2).
    rule(ErrorKind.not_learner, Endpoint.scores, {403, 404, 422}),
)

PROFILE = VendorProfile(
    name="d2l",
    error_rules=ERROR_RULES,
    # Line items: at most 200 per response, the rest via Link rel=next (§2.5, §7 #24). Results and
    # NRPS page sizes are UNCONFIRMED (§2.6): 200 / 50 as hints (the spec lets the platform return fewer).
    page_sizes={Endpoint.line_items: 200, Endpoint.results: 200, Endpoint.memberships: 50},
    # Rate-limited like Brightspace APIs: 50,000 credits/min per app, 10 per call, 429 + Retry-After,
    # X-Rate-Limit-Remaining (§6.2). Slow down with fewer than 100 calls left in the minute.
    default_concurrency=8,
    rate_limit_low_water=1000.0,
)
