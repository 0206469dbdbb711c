"""`canvas`: Instructure Canvas, per lti-platform-behavior.md §1–§6 (sections cited at each quirk)."""
from __future__ import annotations

from typing import Sequence

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import Response

from sandbox_lms import urls
from sandbox_lms.gradebook import FULLY_GRADED, PENDING_MANUAL, IncomingScore, ScorePolicy
from sandbox_lms.paging import canvas_page
from sandbox_lms.profiles.base import Profile, Stale, TokenProblem
from sandbox_lms.responses import SCORE, drop_none, empty_response, json_response, text_response
from sandbox_lms.state import (LEARNER, CourseRecord, LineItemRecord, Member, Registration, ResultRecord)

# §1.5: assertion failures are 400 invalid_request with the validator's message.
_TOKEN_MESSAGES = {
    TokenProblem.unknown_client: "JWS signature invalid.",   # asymmetric provider: unknown sub reads like a bad signature
    TokenProblem.signature: "JWS signature invalid.",
    TokenProblem.audience: "the 'aud' is invalid",
    TokenProblem.expired: "the JWT has expired",
    TokenProblem.iat_old: "the 'iat' must be less than 300 seconds old",
    TokenProblem.iat_future: "the 'iat' must not be in the future",
    TokenProblem.issuer: "the 'iss' is invalid",              # assumed wording: Canvas requires iss; we also match it
    TokenProblem.assertion_type: "assertion method not supported for this grant_type",  # §1.1
}


def _errors(status: int, type_: str, message: str) -> Response:
    """Canvas's object-form error body `{"errors":{"type","message"}}` (§4.2)."""
    return json_response({"errors": {"type": type_, "message": message}}, status)


def scaled_result(rec: ResultRecord) -> tuple[float | None, float]:
    """(resultScore, resultMaximum) as Canvas serialises an Lti::Result: `scaled_result_score`
    (instructure/canvas-lms app/models/lti/result.rb@02bf0940) returns the raw result_score while the
    submission's grader_id is negative (a tool graded: `by_tool`), and raw × result_maximum /
    points_possible once a Canvas user graded it. So a row the tool wrote while
    `prioritize_non_tool_grade` kept a teacher's submission reads back rescaled, not as sent (§3.2, §4.2)."""
    raw = rec.lti_score if rec.lti_maximum is not None else rec.result_score
    maximum = rec.lti_maximum if rec.lti_maximum is not None else rec.result_maximum
    points_possible = rec.result_maximum            # the assignment's points when the cell was stored
    if raw is None or rec.by_tool or not points_possible or not maximum:
        return raw, maximum
    return raw * maximum / points_possible, maximum


class CanvasProfile(Profile):
    """Canvas LTI Advantage services."""

    name = "canvas"
    # §1.2 JwtValidator: requires sub aud exp iat jti, + iss (require_iss); jti replay NOT checked.
    required_claims = ("iss", "sub", "aud", "exp", "iat", "jti")
    all_or_nothing_scopes = True              # §1.6 provider.rb valid_scopes?: every scope must be granted
    # §4.2: FullyGraded or PendingManual with scoreGiven grades; preserve_score / prioritize_non_tool_grade.
    policy = ScorePolicy(sets_score=frozenset({FULLY_GRADED, PENDING_MANUAL}), honours_canvas_flags=True)
    timestamp_needs_zone = False              # §4.2 step 6: lenient parse unless enforce_iso8601_for_lti_scores
    score_content_type_strict = False
    # §2.2: Api.paginate default 10; max per_page for LTI line items/results UNCONFIRMED → 50 assumed.
    # §5.2: NRPS default and max 50.
    page_default = {"line_items": 10, "results": 10, "memberships": 50}
    page_max = {"line_items": 50, "results": 50, "memberships": 50}

    def token_refusal(self, problem: TokenProblem, detail: str) -> Response:
        if problem is TokenProblem.scope:
            return json_response({"error": "invalid_scope", "error_description": detail}, 400)
        if problem is TokenProblem.grant_type:
            return json_response({"error": "unsupported_grant_type", "error_description": detail}, 400)
        return json_response({"error": "invalid_request",
                              "error_description": _TOKEN_MESSAGES.get(problem, detail)}, 400)

    def unauthorized(self, message: str) -> Response:
        # §1.4: expiry mid-job → 401 {"errors":{"type":"unauthorized","message":"Access token expired"}}
        return _errors(401, "unauthorized", message)

    def insufficient_scope(self) -> Response:
        # Assumed: Canvas's AdvantageServices scope check renders 401 unauthorized (status not in the facts file).
        return _errors(401, "unauthorized", "Insufficient permissions")

    def not_found(self, detail: str) -> Response:
        return _errors(404, "not_found", detail)

    def item_missing(self, item: LineItemRecord | None) -> Response:
        # §2.2: a deleted assignment's line item answers 404 with an empty body.
        if item is not None and item.deleted:
            return empty_response(404)
        return self.not_found("The specified resource does not exist.")

    def create_refusal(self, request: Request) -> Response | None:
        return None                            # Canvas reads JSON params whatever the Content-Type

    def filter_line_items(self, items: Sequence[LineItemRecord], request: Request) -> list[LineItemRecord]:
        # §2.2: Assignment.active = not deleted → unpublished assignments ARE listed.
        return super().filter_line_items(items, request)

    def page(self, url: URL, rows: Sequence, kind: str, loop: bool) -> tuple[Sequence, str | None]:
        # §2.2 / §5.2: Canvas API pagination, Link rels current/next/prev/first/last, absolute URLs.
        return canvas_page(url, rows, default=self.page_default[kind], maximum=self.page_max[kind], loop=loop)

    def line_item_json(self, base_url: str, reg: Registration, course: CourseRecord, li: LineItemRecord) -> dict:
        # §2.2 serializer: id, scoreMaximum, label, resourceId, tag, resourceLinkId (nils removed);
        # no startDateTime; endDateTime on GET unconfirmed → omitted.
        return drop_none({
            "id": urls.line_item_url(base_url, reg, course.context_id, li.id),
            "scoreMaximum": li.score_maximum, "label": li.label, "resourceId": li.resource_id,
            "tag": li.tag, "resourceLinkId": li.resource_link_id,
        })

    def visible_results(self, reg: Registration, course: CourseRecord, li: LineItemRecord,
                        user_id: str | None) -> list[ResultRecord]:
        # §3.2: only Lti::Result rows — users the tool has posted a score for (an instructor's later
        # grade is copied into the row); `user_id` of a non-student → 200 [].
        if user_id is not None:
            if not self.gradable(course.member(user_id)):
                return []
            rec = li.results.get(user_id)
            return [rec] if rec is not None and rec.tool_posted else []
        return [r for r in li.results.values() if r.tool_posted]

    def result_json(self, ids: urls.ItemUrls, rec: ResultRecord, user_filtered: bool) -> dict:
        # §3.2 results_serializer: no scoringUserId, no timestamp; the Lti::Result row, not the submission.
        score, maximum = scaled_result(rec)
        return drop_none({
            "id": ids.result(rec.user_id),
            "scoreOf": ids.item,
            "userId": rec.user_id, "resultScore": score, "resultMaximum": maximum,
            "comment": rec.comment,
        })

    def visible_members(self, course: CourseRecord, role: str | None) -> list[Member] | None:
        # §5.2: active enrollments only; role filter must be a full URI Canvas knows (unknown → empty).
        members = [m for m in course.members if m.status == "Active"]
        if role is None:
            return members
        if "://" not in role:
            return []
        return [m for m in members if role in m.roles]

    def member_json(self, m: Member) -> dict:
        d = super().member_json(m)
        d["status"] = "Active"                 # §5.2: status is always "Active"
        return d

    def gradable(self, member: Member | None) -> bool:
        # §4.2 step 4: user_is_student? — an active student enrollment (inactive ones inferred refused).
        return member is not None and LEARNER in member.roles and member.status == "Active"

    def user_refusal(self, reg: Registration, course: CourseRecord, user_id: str) -> Response | None:
        if self.gradable(course.member(user_id)):
            return None
        return _errors(422, "unprocessable_entity", "User not found in course or is not a student")

    def bad_score(self, message: str, status: int = 400) -> Response:
        return _errors(status, "bad_request", message)

    def stale(self, li: LineItemRecord, rec: ResultRecord | None, score: IncomingScore) -> Response | Stale | None:
        # §4.2 step 6: result.updated_at > timestamp → 400; equal accepted (strict >). Only Lti::Result rows count.
        if rec is not None and rec.tool_posted and rec.stored_at > score.timestamp:
            return self.bad_score(
                f"Provided timestamp of {score.timestamp.isoformat()} before last updated timestamp of "
                f"{rec.stored_at.isoformat(timespec='milliseconds')}")
        return None

    def value_refusal(self, score: IncomingScore, li: LineItemRecord) -> Response | None:
        # §4.2 steps 7–8 (skipped for a "reset"): 422 object-form bodies.
        resets = score.grading_progress not in self.policy.sets_score or score.score_given is None
        if resets:
            return None
        if score.score_maximum is None:
            return _errors(422, "unprocessable_entity", "ScoreMaximum not supplied when ScoreGiven present.")
        if score.score_maximum < 0:
            return _errors(422, "unprocessable_entity", "ScoreMaximum must be greater than or equal to 0")
        if score.score_maximum == 0 and li.score_maximum != 0:
            return _errors(422, "unprocessable_entity", "ScoreMaximum cannot be zero if line item's maximum is not zero")
        if score.score_given is not None and score.score_given < 0:
            return _errors(422, "unprocessable_entity", "ScoreGiven must be greater than or equal to 0")
        return None

    def inactive_refusal(self, li: LineItemRecord) -> Response | None:
        # §4.2 / §7 #1: unpublished assignment → 422 with `errors` as an ARRAY (object form elsewhere).
        if not li.active:
            return json_response({"errors": [{
                "field": "grade",
                "message": "cannot be changed at this time: This assignment is still unpublished",
                "error_code": None}]}, 422)
        return None

    def score_accepted(self, base_url: str, reg: Registration, course: CourseRecord, li: LineItemRecord,
                       user_id: str) -> Response:
        # §4.2: 200 (not 201) {resultUrl}, Content-Type score+json.
        return json_response({"resultUrl": urls.result_id_url(base_url, reg, course.context_id, li.id, user_id)},
                             200, SCORE)

    def throttled(self) -> Response:
        # §6.1 request_throttle.rb: 403 text/plain, X-Rate-Limit-Remaining 0.0, no Retry-After, no X-Request-Cost.
        return text_response("403 Forbidden (Rate Limit Exceeded)", 403, headers={"X-Rate-Limit-Remaining": "0.0"})

    def decorate(self, response: Response) -> Response:
        # §6.1: non-throttled API responses carry X-Request-Cost and X-Rate-Limit-Remaining.
        response.headers["X-Request-Cost"] = "0.01"
        response.headers["X-Rate-Limit-Remaining"] = "600.0"
        return response
