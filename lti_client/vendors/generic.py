"""A spec-only platform (AGS 2.0 / NRPS 2.0 as written). Sections (§) are lti-platform-behavior.md."""
from __future__ import annotations

from lti_client.types import Endpoint
from lti_client.vendors.base import VendorProfile

PROFILE = VendorProfile(
    name="generic",
    # The spec prescribes no status for a refused score (§4.1): only the default table applies.
    error_rules=(),
    # `limit` is a hint the platform may lower (§2.1, §3.1, §5.1); Link rel=next MUST follow.
    page_sizes={Endpoint.line_items: 100, Endpoint.results: 100, Endpoint.memberships: 50},
    default_concurrency=4,
)
