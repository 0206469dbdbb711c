"""Moodle: error table and quirks. Sections (§) are lti-platform-behavior.md."""
from __future__ import annotations

from lti_client.types import Endpoint, ErrorKind
from lti_client.vendors.base import VendorProfile, rule

ERROR_RULES = (
    # 409 "Refusing score with an earlier timestamp…" — whole-second `>=` check (§4.3, §7 #16).
    rule(ErrorKind.stale_timestamp, Endpoint.scores, {409}),
    # 400 "Incorrect score received" — Moodle also uses it for malformed bodies, but the client always
    # sends every required field in Moodle's ISO format, so here it means the user is not gradable
    # (not enrolled / role not in gradebookroles) (§4.3, §7 #15).
    rule(ErrorKind.not_learner, Endpoint.scores, {400}, "incorrect score received"),
    # 403 "Line item does not exist." / "Invalid LTI id supplied." and 404 on scores fall to the
    # default course_unreachable row (§4.3 "Auth failures"). A locked grade gives 500 [inferred]:
    # transient by default, and score POSTs are never retried on 5xx.
)

PROFILE = VendorProfile(
    name="moodle",
    error_rules=ERROR_RULES,
    # Moodle pages only when `limit > 0` (§2.3; NRPS `limit`/`from`, §5.3): without a limit one
    # response holds every line item / result / member, the fewest requests possible. Its Link
    # headers (typographic quotes, §7 #19) are still followed if a registration sets page_size.
    page_sizes={Endpoint.line_items: None, Endpoint.results: None, Endpoint.memberships: None},
    # Moodle reads `lti_link_id`, not the spec's `resource_link_id` (§2.3); whether newer versions
    # read `resource_link_id` is UNCONFIRMED, so both are sent (an unread parameter is ignored), and
    # the client also filters the answer.
    resource_link_params=("lti_link_id", "resource_link_id"),
    # No throttling in Moodle's service code (§6.3); PHP workers are few, so stay modest.
    default_concurrency=4,
    # The older LIS membership format carries a body `nextPage` link (§5.3).
    body_next_page_key="nextPage",
)
