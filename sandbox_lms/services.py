"""AGS and NRPS endpoints: bearer check, scope check, course checks, then the endpoint itself.

Vendor differences are asked of the profile; nothing here branches on a vendor name.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from sandbox_lms import gradebook, urls
from sandbox_lms.gradebook import ACTIVITY_PROGRESS, GRADING_PROGRESS, IncomingScore
from sandbox_lms.paging import header_value
from sandbox_lms.profiles.base import Profile, Stale
from sandbox_lms.responses import LINEITEM, LINEITEM_CONTAINER, RESULT_CONTAINER, json_response
from sandbox_lms.runtime import AcceptedScore, ReceivedScore, Runtime
from sandbox_lms.state import CourseRecord, LineItemRecord, Registration

ITEM_KINDS = ("line_item", "results", "scores")
CANVAS_SUBMISSION_EXT = "https://canvas.instructure.com/lti/submission"


@dataclass
class Call:
    """One service request, resolved to its registration and profile."""
    request: Request
    reg: Registration
    profile: Profile
    rt: Runtime
    kind: str
    context_id: str
    item_id: int | None = None

    @property
    def base_url(self) -> str:
        return f"{self.request.url.scheme}://{self.request.url.netloc}"


def _authorize(call: Call) -> Response | None:
    """Bearer token known, of this registration, unexpired, and holding a scope this endpoint accepts.
    Scopes revoked on the registration after issue no longer count (revocation takes effect at once)."""
    auth = call.request.headers.get("authorization", "")
    if not auth[:7].lower() == "bearer ":
        return call.profile.unauthorized("Missing access token")
    issued = call.rt.tokens.get(auth[7:].strip())
    if issued is None or issued.registration != call.reg.name:
        return call.profile.unauthorized("Invalid access token")
    if issued.expires_at <= call.rt.now():
        return call.profile.unauthorized("Access token expired")
    if not (call.profile.scopes_for(call.kind) & issued.scopes & call.reg.granted_scopes):
        return call.profile.insufficient_scope()
    return None


def _find_item(course: CourseRecord, item_id: int) -> LineItemRecord | None:
    # Deleted items are returned too: the profile decides how a deleted one looks (Canvas: empty 404).
    return next((li for li in course.line_items if li.id == item_id), None)


async def handle(call: Call) -> Response:
    """Run one AGS/NRPS request through the common checks and its endpoint."""
    profile, reg = call.profile, call.reg
    refusal = profile.request_refusal(call.request, reg, call.kind) or _authorize(call)
    if refusal is not None:
        return refusal
    course = reg.courses.get(call.context_id)
    if course is None:
        return profile.not_found(f"Course {call.context_id} doesn't exist.")
    refusal = profile.course_refusal(course)
    if refusal is not None:
        return refusal
    if call.kind == "line_items":
        return _line_items(call, course)
    if call.kind == "line_items_create":
        return await _create_line_item(call, course)
    if call.kind == "memberships":
        return _memberships(call, course)
    li = _find_item(course, call.item_id or 0)
    if li is None or li.deleted:
        return profile.item_missing(li)
    if call.kind == "line_item":
        return json_response(profile.line_item_json(call.base_url, reg, course, li), 200, LINEITEM)
    if call.kind == "results":
        return _results(call, course, li)
    return await _score(call, course, li)


def _paged(call: Call, rows: list, kind: str) -> tuple[list, dict[str, str]]:
    page, link = call.profile.page(call.request.url, rows, kind, call.reg.faults.paging_loop)
    return list(page), ({"Link": header_value(link)} if link else {})


def _line_items(call: Call, course: CourseRecord) -> Response:
    rows = call.profile.filter_line_items(course.line_items, call.request)
    page, headers = _paged(call, rows, "line_items")
    body = [call.profile.line_item_json(call.base_url, call.reg, course, li) for li in page]
    return json_response(body, 200, LINEITEM_CONTAINER, headers)


async def _create_line_item(call: Call, course: CourseRecord) -> Response:
    profile = call.profile
    refusal = profile.create_refusal(call.request)
    if refusal is not None:
        return refusal
    try:
        body = json.loads(await call.request.body())
    except ValueError:
        return profile.problem(400, "Invalid JSON")
    label, maximum = body.get("label") if isinstance(body, dict) else None, None
    if isinstance(body, dict):
        maximum = body.get("scoreMaximum")
    # AGS §3.1: label required and non-blank; scoreMaximum numeric and strictly greater than 0.
    if not isinstance(label, str) or not label.strip():
        return profile.problem(400, "label is missing")
    if isinstance(maximum, bool) or not isinstance(maximum, (int, float)) or maximum <= 0:
        return profile.problem(400, "scoreMaximum must be a number greater than 0")
    new_id = max([call.reg.next_line_item_id] + [li.id + 1 for li in course.line_items])
    call.reg.next_line_item_id = new_id + 1
    li = LineItemRecord(
        id=new_id, label=label, score_maximum=float(maximum), resource_link_id=body.get("resourceLinkId"),
        resource_id=body.get("resourceId"), tag=body.get("tag"),
        start_date_time=gradebook.parse_timestamp(body.get("startDateTime"), require_zone=False),
        end_date_time=gradebook.parse_timestamp(body.get("endDateTime"), require_zone=False),
    )
    course.line_items.append(li)
    return json_response(profile.line_item_json(call.base_url, call.reg, course, li), 201, LINEITEM)


def _results(call: Call, course: CourseRecord, li: LineItemRecord) -> Response:
    user_id = call.request.query_params.get("user_id")
    rows = call.profile.visible_results(call.reg, course, li, user_id)
    page, headers = _paged(call, rows, "results")
    ids = urls.item_urls(call.base_url, call.reg, course.context_id, li.id)
    body = [call.profile.result_json(ids, r, user_id is not None) for r in page]
    return json_response(body, 200, RESULT_CONTAINER, headers)


def _memberships(call: Call, course: CourseRecord) -> Response:
    members = call.profile.visible_members(course, call.request.query_params.get("role")) or []
    page, headers = _paged(call, members, "memberships")
    body = {"id": str(call.request.url),
            "context": {"id": course.context_id, "label": course.context_id, "title": course.title},
            "members": [call.profile.member_json(m) for m in page]}
    return json_response(body, 200, call.profile.membership_media_type(), headers)


def _number(value: object) -> float | None | str:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "bad"
    return float(value)


def parse_score(profile: Profile, body: dict) -> IncomingScore | Response:
    """Required fields, progress values, timestamp and numbers of a score body (AGS §3.4)."""
    for name in ("userId", "activityProgress", "gradingProgress", "timestamp"):
        if body.get(name) in (None, ""):
            return profile.bad_score(f"{name} is missing")
    if body["activityProgress"] not in ACTIVITY_PROGRESS or body["gradingProgress"] not in GRADING_PROGRESS:
        return profile.bad_score("activityProgress or gradingProgress has an invalid value")
    ts = gradebook.parse_timestamp(body["timestamp"], require_zone=profile.timestamp_needs_zone)
    if ts is None:
        return profile.bad_score(f"Provided timestamp of {body['timestamp']} not a valid timestamp")
    given, maximum = _number(body.get("scoreGiven")), _number(body.get("scoreMaximum"))
    if given == "bad" or maximum == "bad":
        return profile.bad_score("scoreGiven and scoreMaximum must be numbers")
    ext = body.get(CANVAS_SUBMISSION_EXT)
    ext = ext if isinstance(ext, dict) else {}
    comment = body.get("comment")
    return IncomingScore(
        user_id=str(body["userId"]), score_given=given, score_maximum=maximum, timestamp=ts,
        activity_progress=body["activityProgress"], grading_progress=body["gradingProgress"],
        comment=comment if isinstance(comment, str) and comment else None,
        scoring_user_id=body.get("scoringUserId") or None,
        preserve_score=ext.get("preserve_score") is True,
        prioritize_non_tool_grade=ext.get("prioritize_non_tool_grade") is True,
    )


async def _score(call: Call, course: CourseRecord, li: LineItemRecord) -> Response:
    profile, reg, rt = call.profile, call.reg, call.rt
    refusal = profile.score_content_type_refusal(call.request)
    if refusal is not None:
        return refusal
    try:
        body = json.loads(await call.request.body())
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return profile.bad_score("Invalid JSON body")
    user_id = body.get("userId")
    rt.score_bodies.append(ReceivedScore(reg.name, course.context_id, li.id, body))
    rt.counters.score_posts[(reg.name, course.context_id, li.id, str(user_id))] += 1
    if user_id in (None, ""):
        return profile.bad_score("userId is missing")
    refusal = profile.user_refusal(reg, course, str(user_id))       # Canvas checks the user first (§4.2 step 4)
    if refusal is not None:
        return refusal
    score = parse_score(profile, body)
    if isinstance(score, Response):
        return score
    verdict = profile.stale(li, li.results.get(score.user_id), score)
    if isinstance(verdict, Response):
        return verdict
    refusal = profile.value_refusal(score, li) or profile.inactive_refusal(li)
    if refusal is not None:
        return refusal
    applied = verdict is not Stale.ignore
    if applied:
        gradebook.apply_score(li, score, profile.policy)
    response = profile.score_accepted(call.base_url, reg, course, li, score.user_id)
    rt.score_log.append(AcceptedScore(
        registration=reg.name, context_id=course.context_id, item_id=li.id, user_id=score.user_id,
        score_given=score.score_given, score_maximum=score.score_maximum, timestamp=score.timestamp,
        activity_progress=score.activity_progress, grading_progress=score.grading_progress,
        received_at=rt.now(), status=response.status_code, applied=applied))
    return response
