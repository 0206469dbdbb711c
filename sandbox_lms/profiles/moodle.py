"""`moodle`: Moodle's mod/lti services, per lti-platform-behavior.md §1–§6 (sections cited at each quirk)."""
from __future__ import annotations

from typing import Sequence

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import Response

from sandbox_lms import urls
from sandbox_lms.gradebook import IncomingScore, ScorePolicy, whole_seconds
from sandbox_lms.paging import moodle_page
from sandbox_lms.profiles.base import MEMBERSHIP_NS, Profile, Stale, TokenProblem
from sandbox_lms.responses import (LINEITEM, LINEITEM_CONTAINER, RESULT_CONTAINER, SCORE, drop_none,
                                   empty_response, json_response, text_response)
from sandbox_lms.state import (INSTRUCTOR, LEARNER, SCOPE_LINEITEM_READONLY, CourseRecord, LineItemRecord, Member,
                               Registration, ResultRecord)

_AGS_KINDS = ("line_items", "line_item", "line_items_create", "results", "scores")
# Moodle checks the Accept header of GETs against one media type, exactly (or empty) (§2.3 lineitems.php;
# results.php and lineitem.php follow the same pattern — inferred).
_ACCEPT = {"line_items": LINEITEM_CONTAINER, "line_item": LINEITEM, "results": RESULT_CONTAINER}
# §1.5: token.php answers every failure with 400 {"error": "<code>"}; the newer version puts the
# php-jwt exception message there for signature/time failures.
_TOKEN_ERRORS = {
    TokenProblem.grant_type: "unsupported_grant_type", TokenProblem.unknown_client: "invalid_client",
    TokenProblem.scope: "invalid_scope", TokenProblem.signature: "Signature verification failed",
    TokenProblem.expired: "Expired token", TokenProblem.iat_future: "Cannot handle token prior to iat",
}


class MoodleProfile(Profile):
    """Moodle LTI Advantage services (gradebookservices, memberships)."""

    name = "moodle"
    form_content_type_exact = True            # §1.1: Content-Type exactly application/x-www-form-urlencoded
    audience_checked = False                  # §1.2: no aud (or jti) check in token.php
    issuer_checked = False                    # §1.2: the tool is looked up by `sub` only
    required_claims = ("sub",)                # php-jwt checks exp/iat/nbf only when present
    iat_max_age_s = None                      # php-jwt has no "too old" iat rule
    iat_future_s = 0                          # php-jwt default leeway 0
    # §4.3: FullyGraded only; default scoreMaximum 1; a clear nulls timemodified (row no longer listed);
    # timemodified = strtotime(timestamp), whole seconds; a teacher override keeps the final grade while
    # the score POST still answers 200 (grade_item.php update_raw_grade — inferred, §4.3).
    policy = ScorePolicy(default_maximum=1.0, clear_removes_row=True, whole_seconds=True, override_sticks=True)
    timestamp_needs_zone = False              # Moodle's ISO 8601 regex (zone optional — assumed)
    page_default = {"line_items": 0, "results": 0, "memberships": 0}   # §2.3: paging only when limit > 0
    # §2.3: Moodle filters by lti_link_id; the spec's resource_link_id is not read (ignored).
    link_filter_param = "lti_link_id"
    page_max = page_default

    def token_refusal(self, problem: TokenProblem, detail: str) -> Response:
        return json_response({"error": _TOKEN_ERRORS.get(problem, "invalid_request")}, 400)

    def scopes_for(self, kind: str) -> frozenset[str]:
        # §1.6 / §7 #17 (Hypothesis _v13.py): Moodle wants lineitem.readonly explicitly for GETs.
        if kind in ("line_items", "line_item"):
            return frozenset({SCOPE_LINEITEM_READONLY})
        return super().scopes_for(kind)

    def problem(self, status: int, detail: str) -> Response:
        # Moodle's service response: JSON {"status", "reason"} (inferred from mod/lti/service/response.php).
        return json_response({"status": status, "reason": detail}, status)

    def unauthorized(self, message: str) -> Response:
        return self.problem(401, message)

    def insufficient_scope(self) -> Response:
        # §4.3: permission failures are 401 ("This resource does not support … requests.").
        return self.problem(401, "This resource does not support this request.")

    def not_found(self, detail: str) -> Response:
        return self.problem(404, "Not Found: " + detail)

    def item_missing(self, item: LineItemRecord | None) -> Response:
        return self.problem(404, "Not Found: Grade item doesn't exist.")

    def request_refusal(self, request: Request, reg: Registration, kind: str) -> Response | None:
        # §2.3: `?type_id=` is part of every AGS URL; a client that appends /scores after the query
        # string sends type_id "1/scores" (§7 #18) → refused.
        if kind in _AGS_KINDS and request.query_params.get("type_id") != str(reg.type_id):
            return self.problem(400, "Invalid type_id")
        accept = _ACCEPT.get(kind)
        if accept is not None and request.headers.get("accept", "") not in ("", accept):
            return self.problem(400, f"Accept must be {accept}")
        return None

    def page(self, url: URL, rows: Sequence, kind: str, loop: bool) -> tuple[Sequence, str | None]:
        # §2.3: limit/from with rels in typographic quotes (U+201C/U+201D), incl. non-standard canonical.
        return moodle_page(url, rows, loop=loop)

    def line_item_json(self, base_url: str, reg: Registration, course: CourseRecord, li: LineItemRecord) -> dict:
        # §2.3 item_for_json: resourceId/tag '' when unset; legacy duplicate ltiLinkId.
        return drop_none({
            "id": urls.line_item_url(base_url, reg, course.context_id, li.id),
            "label": li.label, "scoreMaximum": li.score_maximum,
            "resourceId": li.resource_id or "", "tag": li.tag or "",
            "resourceLinkId": li.resource_link_id, "ltiLinkId": li.resource_link_id,
        })

    def create_refusal(self, request: Request) -> Response | None:
        # §2.3: POST needs Content-Type lineitem+json exactly, else 400.
        if request.headers.get("content-type") != LINEITEM:
            return self.problem(400, "Content-Type must be " + LINEITEM)
        return None

    def visible_results(self, reg: Registration, course: CourseRecord, li: LineItemRecord,
                        user_id: str | None) -> list[ResultRecord]:
        # §3.3: only grades with a timemodified (graded rows) are listed.
        rows = [li.results.get(user_id)] if user_id is not None else list(li.results.values())
        return [r for r in rows if r is not None and r.result_score is not None]

    def result_json(self, ids: urls.ItemUrls, rec: ResultRecord, user_filtered: bool) -> dict:
        # §3.3 result_for_json: id …/results?type_id=…&user_id=…; non-standard `timestamp` = date('c'),
        # second precision; no scoringUserId.
        return drop_none({
            "id": ids.result(rec.user_id),
            "userId": rec.user_id, "resultScore": rec.result_score, "resultMaximum": rec.result_maximum,
            "comment": rec.comment, "scoreOf": ids.item,
            "timestamp": rec.stored_at.replace(microsecond=0).isoformat(),
        })

    def visible_members(self, course: CourseRecord, role: str | None) -> list[Member] | None:
        # §5.3: only active enrolments; short role names are prefixed with the membership namespace.
        members = [m for m in course.members if m.status == "Active"]
        if role is None:
            return members
        full = role if "://" in role else MEMBERSHIP_NS + role
        return [m for m in members if full in m.roles]

    def member_json(self, m: Member) -> dict:
        d = super().member_json(m)
        d["status"] = "Active"                 # §5.3: status always "Active"
        # §10 (Moodle 5.1, seen on the wire): bare short role names, and everyone without
        # moodle/course:manageactivities is a "Learner" — a non-editing teacher (our TeachingAssistant)
        # included, although the gradebook then refuses their scores (gradable() below).
        d["roles"] = ["Instructor" if INSTRUCTOR in m.roles else "Learner"]
        return d

    def score_content_type_refusal(self, request: Request) -> Response | None:
        # §4.3: Content-Type must be exactly the score media type; empty or anything else → 400.
        if request.headers.get("content-type") != SCORE:
            return self.bad_score("Incorrect score received")
        return None

    def bad_score(self, message: str, status: int = 400) -> Response:
        # §4.3: every validation failure is 400 "Incorrect score received…".
        return self.problem(400, "Incorrect score received")

    def gradable(self, member: Member | None) -> bool:
        # §4.3: enrolled (onlyactive=false: suspended = Inactive still counts) with a gradebook role (Learner).
        return member is not None and member.status != "Deleted" and LEARNER in member.roles

    def user_refusal(self, reg: Registration, course: CourseRecord, user_id: str) -> Response | None:
        return None if self.gradable(course.member(user_id)) else self.bad_score("not gradable")

    def stale(self, li: LineItemRecord, rec: ResultRecord | None, score: IncomingScore) -> Response | Stale | None:
        # §4.3: timemodified >= strtotime(timestamp) → 409, whole seconds (same second conflicts).
        if rec is not None and rec.result_score is not None \
                and whole_seconds(rec.stored_at) >= whole_seconds(score.timestamp):
            return self.problem(409, f"Refusing score with an earlier timestamp for item {li.id} "
                                     f"and user {score.user_id}")
        return None

    def value_refusal(self, score: IncomingScore, li: LineItemRecord) -> Response | None:
        return None                            # §4.3: scoreMaximum defaults to 1; no range checks

    def score_accepted(self, base_url: str, reg: Registration, course: CourseRecord, li: LineItemRecord,
                       user_id: str) -> Response:
        return empty_response(200)             # §4.3: 200, empty body

    def throttled(self) -> Response:
        # §6.3: no throttling in Moodle's service code; an overloaded web server answers 503 (assumed).
        return text_response("Service Unavailable", 503)
