"""Canvas LMS: error table and quirks. Sections (§) are lti-platform-behavior.md."""
from __future__ import annotations

from lti_client.types import CredentialFault, Endpoint, ErrorKind, Score, TokenRefusal
from lti_client.vendors.base import ALL_ENDPOINTS, VendorProfile, rule, token_rule

CANVAS_SUBMISSION_EXT = "https://canvas.instructure.com/lti/submission"

ERROR_RULES = (
    # Canvas throttles with 403 text/plain "403 Forbidden (Rate Limit Exceeded)", no Retry-After
    # (§6.1, request_throttle.rb); newer docs say 429 — the default table covers that.
    rule(ErrorKind.throttled, ALL_ENDPOINTS, {403, 429}, "rate limit exceeded"),
    # 422 "This course has concluded…" with the improved-response-codes flag; 404 without it (§4.2 2,
    # §7 #5) — the 404 falls to the default course_unreachable row.
    rule(ErrorKind.course_unreachable, ALL_ENDPOINTS, {422}, "course has concluded"),
    # 422 errors[] {"field":"grade","message":"…This assignment is still unpublished"} (§4.2, §7 #1).
    rule(ErrorKind.item_inactive, Endpoint.scores, {422}, "unpublished"),
    # 422 "User not found in course or is not a student" (§4.2 check 4, §7 #2, #3).
    rule(ErrorKind.not_learner, Endpoint.scores, {422}, "not a student"),
    # 400 "Provided timestamp of X before last updated timestamp of Y" (§4.2 check 6, §7 #7).
    rule(ErrorKind.stale_timestamp, Endpoint.scores, {400}, "before last updated timestamp"),
    # Deliberately unmapped (→ other): 422 "maximum number of allowed attempts" (§7 #11, prevented by
    # new_submission=false), "closed grading period" / "not applicable to this student" (§4.2,
    # status and body UNCONFIRMED).
)

TOKEN_RULES = (
    # The asymmetric provider reports a `sub` that matches no developer key exactly like a bad
    # signature: 400 invalid_request "JWS signature invalid." (§1.5) — a rotated key or a wrong client_id.
    token_rule(TokenRefusal.credentials_rejected, CredentialFault.key_or_client, "invalid_request",
               r"JWS signature invalid"),
    # 400 invalid_request "assertion method not supported for this grant_type" (§1.1).
    token_rule(TokenRefusal.credentials_rejected, CredentialFault.request, "invalid_request",
               r"assertion method not supported"),
    # Validator messages ("the 'aud' is invalid", "the JWT has expired", iat window, §1.2/§1.5) and
    # 401 invalid_client "unknown client" fall to the default rows.
)


def score_extensions(score: Score) -> dict:
    """Canvas submission extension (§4.2 "Canvas extension"): a re-sent grade must not create a new
    attempt (`new_submission` defaults to true → 422 max attempts, §7 #11), and a grade a person
    entered stays unless the send is an approved supersede: `prioritize_non_tool_grade` keeps any
    present submission score (§4.2, §7 #8/#9) — AGS cannot show a teacher's grade on a cell the tool
    never scored (§3.2), so only this flag protects it."""
    return {CANVAS_SUBMISSION_EXT: {"new_submission": False,
                                    "prioritize_non_tool_grade": score.keep_non_tool_grade}}


PROFILE = VendorProfile(
    name="canvas",
    error_rules=ERROR_RULES,
    token_rules=TOKEN_RULES,
    # valid_scopes? requires every requested scope on the developer key, else 400 invalid_scope for the
    # whole request (§1.6): the client then asks for the read scopes in smaller sets.
    scopes_all_or_nothing=True,
    page_sizes={
        # Line items/results: `limit` is mapped to per_page by gradebook_services `pagination_args`
        # (§2.2); default 10/page, max UNCONFIRMED (§9). Canvas caps per_page silently at its API
        # maximum, so asking 100 can only save requests; we follow Link rel=next either way.
        Endpoint.line_items: 100,
        Endpoint.results: 100,
        # NRPS: default and max page size 50, `limit` capped at 50 (§5.2 MAX_PAGE_SIZE).
        Endpoint.memberships: 50,
    },
    # The LTI Advantage bucket is per developer key per cluster; each in-flight request costs 50 up
    # front against a high-water mark of 600 (§6.1) — about 12 in flight; 8 leaves headroom.
    # §6.1: the bucket is full at its high-water mark 600 and every request in flight holds its up-front
    # cost 50 until it ends: 600 ÷ 50 = 12 in flight before Canvas answers 403 (Rate Limit Exceeded).
    default_concurrency=12,
    # X-Rate-Limit-Remaining = hwm − bucket (§6.1): under one up-front cost the bucket is all but full
    # (filled by cost, not only by requests in flight), so the next requests wait a little.
    rate_limit_low_water=50.0,
    rate_limit_request_cost=50.0,
    score_extensions=score_extensions,
)
