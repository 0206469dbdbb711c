"""`d2l`: D2L Brightspace, per lti-platform-behavior.md (sections cited at each quirk).

Unconfirmed in the facts file, assumed here: scope policy (all-or-nothing invalid_scope, like Canvas),
score success status (200, empty body), stale scores (ignored like the spec), results and NRPS paging
(200 per page with Link rel=next, like line items), NRPS statuses (spec: Active and Inactive shown),
Inactive enrolments still gradable, error body shape (problem+json with the quoted messages).
"""
from __future__ import annotations

from starlette.responses import Response

from sandbox_lms.gradebook import ScorePolicy
from sandbox_lms.profiles.base import Profile, TokenProblem
from sandbox_lms.responses import empty_response, json_response
from sandbox_lms.state import LEARNER, CourseRecord, LineItemRecord, Registration
from sandbox_lms.urls import D2L_AUDIENCE


class D2lProfile(Profile):
    """Brightspace LTI Advantage services."""

    name = "d2l"
    # §1.2 D2L FAQ: iss = sub = client_id, aud, iat, exp, jti required.
    required_claims = ("iss", "sub", "aud", "exp", "iat", "jti")
    all_or_nothing_scopes = True               # assumed (§1.6 UNCONFIRMED)
    policy = ScorePolicy(cap_at_maximum=True)  # §2.5/§4.5: capped at max unless "Can Exceed"
    score_content_type_strict = False
    # §2.5: line items capped at 200 per response, rest via Link rel=next. Results/NRPS: assumed alike.
    page_default = {"line_items": 200, "results": 200, "memberships": 200}
    page_max = page_default

    def expected_audience(self, token_url: str) -> str:
        # §1.3: a fixed "Brightspace OAuth2 Audience", different from the token URL.
        return D2L_AUDIENCE

    def token_refusal(self, problem: TokenProblem, detail: str) -> Response:
        # §1.3: iss ≠ client_id → invalid_client (D2L FAQ); other assertion faults →
        # 400 invalid_grant "Error validating assertion: …" (pylti1.3#43).
        if problem in (TokenProblem.issuer, TokenProblem.unknown_client):
            return json_response({"error": "invalid_client"}, 400)
        if problem in (TokenProblem.scope, TokenProblem.grant_type, TokenProblem.content_type,
                       TokenProblem.missing_field):
            return super().token_refusal(problem, detail)
        return json_response({"error": "invalid_grant",
                              "error_description": f"Error validating assertion: {detail}"}, 400)

    def user_refusal(self, reg: Registration, course: CourseRecord, user_id: str) -> Response | None:
        # §4.5 (Hypothesis _v13.py; D2L FAQ): 403 not enrolled / 404 unknown user / 422 role not gradeable.
        member = course.member(user_id)
        if member is None or member.status == "Deleted":
            # Searching other courses only on this refusal path keeps the accepted path O(1).
            known = any(c.member(user_id) is not None for c in reg.courses.values())
            if known:
                return self.problem(403, "User in requested score is not enrolled in the org unit")
            return self.problem(404, "User in requested score does not exist")
        if LEARNER not in member.roles:
            return self.problem(422, "User in requested score has a role that cannot be graded in Grades")
        return None

    def score_accepted(self, base_url: str, reg: Registration, course: CourseRecord, li: LineItemRecord,
                       user_id: str) -> Response:
        return empty_response(200)             # assumed (§4.6 UNCONFIRMED)

    def throttled(self) -> Response:
        # §6.2: 429 Too Many Requests with Retry-After (seconds) instead of the X-Rate-Limit headers.
        return json_response({"error": "Too Many Requests"}, 429, headers={"Retry-After": "1"})
