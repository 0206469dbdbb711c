"""Moodle: error table and quirks. Sections (§) are lti-platform-behavior.md.

Moodle 5.1 as seen on the wire (§10) wins over older code reads: score refusals carry their text only
in the HTTP reason phrase with body `[]`, so every score row below decides on status + endpoint and
reads the phrase only when it is there (HTTP/2 or a proxy drops it).
"""
from __future__ import annotations

from lti_client.types import CredentialFault, Endpoint, ErrorKind, TokenRefusal
from lti_client.vendors.base import VendorProfile, rule, token_rule

ERROR_RULES = (
    # 409 "Refusing score with an earlier timestamp…" — the only 409 scores.php sends: whole-second
    # `>=` check against timemodified (§4.3, §7 #16, §10).
    rule(ErrorKind.stale_timestamp, Endpoint.scores, {409}),
    # 400 "Incorrect score received{…}" (in the reason phrase, body `[]`, §10): the user is not gradable
    # (not enrolled, or a role outside gradebookroles — e.g. a non-editing teacher NRPS lists as Learner).
    # Moodle also uses it for malformed bodies, but the client always sends every required field in
    # Moodle's format, so a 400 on scores means not_learner with or without the phrase (§4.3, §7 #15, §10).
    rule(ErrorKind.not_learner, Endpoint.scores, {400}),
    # 500 with body `[]` on scores = the grade (or grade item) is locked (§10; §4.3 update_raw_grade
    # returns false and save_grade_item throws). Not `transient`: sending again changes nothing until a
    # teacher unlocks it; not `item_inactive`: a lock may hold one learner's grade only, and a real
    # crash is also a 500. `other` ends the resync task after its bounded attempts, with this note.
    rule(ErrorKind.other, Endpoint.scores, {500}, blank=True,
         note="Moodle refused the score: the grade is locked in the gradebook (HTTP 500, body [])"),
    # 403 "Line item does not exist." / "Invalid LTI id supplied." and 404 on scores fall to the
    # default course_unreachable row (§4.3 "Auth failures").
)

TOKEN_RULES = (
    # token.php answers 400 {"error": "invalid_client"} for an unknown clientid and, in the old version,
    # for a bad signature (§1.5): which one cannot be told apart.
    token_rule(TokenRefusal.credentials_rejected, CredentialFault.key_or_client, "invalid_client"),
    # invalid_request = wrong method / Content-Type, a missing field, or an undecodable JWT (§1.1, §1.5).
    # The newer token.php writes php-jwt's message into `error` ("Signature verification failed",
    # "Expired token", "Cannot handle token prior to …"): the default rows read it.
    token_rule(TokenRefusal.credentials_rejected, CredentialFault.request, "invalid_request"),
)


def unescape_link_target(url: str) -> str:
    """Moodle HTML-escapes its line-item Link targets (`…&amp;limit=2&amp;from=2`, §10): followed as
    written, `amp;limit` is ignored and the whole list comes back again."""
    return url.replace("&amp;", "&")


PROFILE = VendorProfile(
    name="moodle",
    error_rules=ERROR_RULES,
    token_rules=TOKEN_RULES,
    # Moodle pages only when `limit > 0` (§2.3; NRPS `limit`/`from`, §5.3): without a limit one
    # response holds every line item / result / member, the fewest requests possible. Its Link
    # headers (typographic quotes, §7 #19; `&amp;`, §10) are still followed if a registration sets page_size.
    page_sizes={Endpoint.line_items: None, Endpoint.results: None, Endpoint.memberships: None},
    # Results paging with type_id crashes inside Moodle 5.1 (404 + HTML page "Call to a member function
    # out() on null", §10): results never carry `limit`, even when the registration sets page_size.
    never_paged=frozenset({Endpoint.results}),
    link_target=unescape_link_target,
    # Moodle 5.1 reads `resource_link_id` and falls back to `lti_link_id` (§10); older versions read only
    # `lti_link_id` (§2.3). Both are sent (an unread parameter is ignored), and the client filters too.
    resource_link_params=("lti_link_id", "resource_link_id"),
    # No throttling in Moodle's service code (§6.3); PHP workers are few, so stay modest.
    default_concurrency=4,
    # The older LIS membership format carries a body `nextPage` link (§5.3).
    body_next_page_key="nextPage",
    # scores.php: timemodified = strtotime(timestamp), refused when timemodified >= it (§4.3, §10).
    whole_second_timestamps=True,
    # token.php grants the intersection of the requested scopes silently; invalid_scope only when it
    # is empty (§1.6, §10): asking again in smaller sets could not get more.
    scopes_all_or_nothing=False,
)
