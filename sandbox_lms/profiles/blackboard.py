"""`blackboard`: Blackboard Learn (Anthology), per lti-platform-behavior.md (sections cited at each quirk).

Unconfirmed in the facts file, assumed here: scope policy (intersection, echoed in `scope`), score
success (200, empty body), stale scores (ignored like the spec), paging (100 per page, Link rel=next),
NRPS statuses (spec), the refusal for an item that is not Available (403, body below), throttling
(429 without Retry-After), error body shape `{"status", "message"}`, and that non-Learner members get
the same 400 "User could not be found:" as users outside the course.
"""
from __future__ import annotations

from starlette.responses import Response

from sandbox_lms import urls
from sandbox_lms.profiles.base import Profile
from sandbox_lms.responses import drop_none, empty_response, json_response
from sandbox_lms.state import CourseRecord, LineItemRecord, Registration, ResultRecord


class BlackboardProfile(Profile):
    """Blackboard Learn LTI Advantage services (token at the developer gateway, §1.3)."""

    name = "blackboard"
    # §1.3: aud = the token URL (the base behaviour). jti not known to be required.
    score_content_type_strict = False

    def problem(self, status: int, detail: str) -> Response:
        return json_response({"status": status, "message": detail}, status)

    def user_refusal(self, reg: Registration, course: CourseRecord, user_id: str) -> Response | None:
        # §4.4 (Hypothesis _v13.py): 400 with "User could not be found:" for users not in the course.
        if self.gradable(course.member(user_id)):
            return None
        return self.problem(400, f"User could not be found: {user_id}")

    def result_json(self, ids: urls.ItemUrls, rec: ResultRecord, user_filtered: bool) -> dict:
        d = super().result_json(ids, rec, user_filtered)
        if user_filtered:
            d.pop("comment", None)             # §3.4 / §7 #21: the user_id filter drops `comment`
        return drop_none(d)

    def inactive_refusal(self, li: LineItemRecord) -> Response | None:
        # §7 seed: an item that is not Available refuses scores. Status and body UNCONFIRMED → assumed 403.
        if not li.active:
            return self.problem(403, "Grades cannot be posted: the line item is not Available")
        return None

    def score_accepted(self, base_url: str, reg: Registration, course: CourseRecord, li: LineItemRecord,
                       user_id: str) -> Response:
        return empty_response(200)

    def throttled(self) -> Response:
        return json_response({"status": 429, "message": "Too Many Requests"}, 429)
