"""Blackboard Learn: error table and quirks. Sections (§) are lti-platform-behavior.md."""
from __future__ import annotations

from lti_client.types import Endpoint, ErrorKind
from lti_client.vendors.base import VendorProfile, rule

ERROR_RULES = (
    # 400 "User could not be found:" — user not in the course (§4.4, §7 #20; hypothesis _v13.py).
    rule(ErrorKind.not_learner, Endpoint.scores, {400}, "user could not be found"),
    # A column that is not "Available" refuses grades (diagnosis-rules "Blackboard not available");
    # the status code is UNCONFIRMED (§4.4), so any 4xx with that text counts.
    rule(ErrorKind.item_inactive, Endpoint.scores, set(range(400, 500)) - {401, 429}, "not available"),
)

PROFILE = VendorProfile(
    name="blackboard",
    error_rules=ERROR_RULES,
    # Paging scheme and limits UNCONFIRMED (§2.4, §2.6): ask for a generous page; Link next followed.
    page_sizes={Endpoint.line_items: 100, Endpoint.results: 100, Endpoint.memberships: 50},
    # The results `user_id` filter drops `comment` (§3.4, §7 #21): fetch all, filter client side.
    server_side_user_filter=False,
    # REST apps get 10,000 calls/day per developer group; whether LTI calls count is UNCONFIRMED (§6.3).
    default_concurrency=4,
)
