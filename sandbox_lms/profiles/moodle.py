"""`moodle`: Moodle's mod/lti services, per lti-platform-behavior.md §1–§6 and §10 (Moodle 5.1 as seen on
the wire, which wins where they differ). Checked against recordings of a real Moodle 5.1+ (Build 20251017)
by tests/sandbox/test_moodle_conformance.py; what those recordings showed is in docs/real-moodle-5.1.md.

Moodle's service errors carry their text in the HTTP reason phrase (`response::send()` writes
`HTTP/1.0 {code} {reason}`): this profile sets it through the server's `x-sandbox-reason` header
(sandbox_lms/server.py)."""
from __future__ import annotations

import contextvars
import json
from typing import Sequence

from starlette.datastructures import URL, QueryParams
from starlette.requests import Request
from starlette.responses import Response

from sandbox_lms import urls
from sandbox_lms.gradebook import IncomingScore, ScorePolicy, whole_seconds
from sandbox_lms.profiles.base import MEMBERSHIP_NS, Profile, Stale, TokenProblem
from sandbox_lms.responses import (LINEITEM, LINEITEM_CONTAINER, MEMBERSHIP_CONTAINER, RESULT_CONTAINER, SCORE,
                                   drop_none, json_response, media_type_of, text_response)
from sandbox_lms.state import (INSTRUCTOR, LEARNER, SCOPE_LINEITEM_READONLY, CourseRecord, LineItemRecord, Member,
                               Registration, ResultRecord)

# The server turns this response header into the status line's reason phrase (sandbox_lms/server.py
# REASON_HEADER; not imported from there: the server imports the app, which imports the profiles).
REASON_HEADER = "x-sandbox-reason"
_AGS_KINDS = ("line_items", "line_item", "line_items_create", "results", "scores")
# What each GET resource serves (services.php matches Accept against a resource's formats, §10).
_FORMATS = {"line_items": (LINEITEM_CONTAINER, LINEITEM), "line_item": (LINEITEM,),
            "results": (RESULT_CONTAINER,), "memberships": (MEMBERSHIP_CONTAINER,)}
# §1.5/§10: token.php answers every failure with 400 {"error": "<code>"}; for signature/time failures the
# code is php-jwt's message.
_TOKEN_ERRORS = {
    TokenProblem.grant_type: "unsupported_grant_type", TokenProblem.unknown_client: "invalid_client",
    TokenProblem.scope: "invalid_scope", TokenProblem.signature: "Signature verification failed",
    TokenProblem.expired: "Expired token", TokenProblem.iat_future: "Cannot handle token prior to iat",
}
# §10: token.php never sets a Content-Type: PHP's default text/html is what the tool receives.
_PHP_DEFAULT_TYPE = "text/html; charset=utf-8"
SCORE_TYPE = SCORE + "; charset=utf-8"
# §10: results paging with type_id crashes inside results.php ($lastpage never set): Moodle's error page.
RESULTS_CRASH_PAGE = ('<!DOCTYPE html>\n<html dir="ltr" lang="en" xml:lang="en">\n<head>\n<title>Error | sandbox</title>\n'
                      '</head>\n<body><div class="errorbox"><p class="errormessage">Exception - Call to a member '
                      'function out() on null</p></div></body>\n</html>\n')

# The request being answered, for Moodle's error body (`request.method/url/accept/contentType`) and the
# raw score body its 400 reason phrase echoes. Set by request_refusal(), the first hook of every service call.
_REQUEST: contextvars.ContextVar[Request | None] = contextvars.ContextVar("moodle_request", default=None)


def _path_info(request: Request) -> str:
    """What PHP calls PATH_INFO: the path after services.php (it appears in "No handler found" reasons)."""
    return request.url.path.partition("/services.php")[2]


def moodle_error(status: int, reason: str) -> Response:
    """`response::send()` for an error without a body (§10): the reason phrase is the text, and the body
    is a pretty-printed JSON {status, reason, request: {method, url, accept?, contentType?}}."""
    request = _REQUEST.get()
    info: dict[str, str] = {}
    if request is not None:
        info = {"method": request.method, "url": request.url.path + (f"?{request.url.query}" if request.url.query else "")}
        if "accept" in request.headers:
            info["accept"] = request.headers["accept"]
        if "content-type" in request.headers:
            info["contentType"] = request.headers["content-type"].split(";", 1)[0]
    body = json.dumps({"status": status, "reason": reason, "request": info}, indent=4, ensure_ascii=False)
    return Response(body, status_code=status, media_type="application/json; charset=utf-8",
                    headers=_reason_header(reason))


def score_refusal(status: int, reason: str | bytes | None) -> Response:
    """scores.php's refusals (§10): body `[]`, the score media type, the text only in the reason phrase
    (None: PHP's standard phrase, e.g. the locked-grade 500 "Internal Server Error")."""
    headers = _reason_header(reason) if reason else {}
    return Response(b"[]", status_code=status, media_type=SCORE_TYPE, headers=headers)


def _reason_header(reason: str | bytes) -> dict[str, str]:
    """REASON_HEADER carrying the phrase's bytes as PHP writes them (text as UTF-8, request bytes as they
    came), spelled so that Starlette's latin-1 header encoding hands the server exactly those bytes."""
    raw = reason if isinstance(reason, bytes) else reason.encode("utf-8")
    return {REASON_HEADER: raw.decode("latin-1")}


class MoodleProfile(Profile):
    """Moodle LTI Advantage services (gradebookservices, memberships)."""

    name = "moodle"
    form_content_type_exact = True            # §1.1: Content-Type exactly application/x-www-form-urlencoded
    audience_checked = False                  # §1.2: no aud (or jti) check in token.php
    issuer_checked = False                    # §1.2: the tool is looked up by `sub` only
    required_claims = ("sub",)                # php-jwt checks exp/iat/nbf only when present
    iat_max_age_s = None                      # php-jwt has no "too old" iat rule
    iat_future_s = 0                          # php-jwt default leeway 0
    token_media_type = _PHP_DEFAULT_TYPE      # §10
    # §4.3/§10: FullyGraded only; default scoreMaximum 1; a clear nulls timemodified (row no longer listed);
    # timemodified = strtotime(timestamp), whole seconds; a teacher override keeps the final grade while
    # the score POST still answers 200 (seen on Moodle 5.1, §10).
    policy = ScorePolicy(default_maximum=1.0, clear_removes_row=True, whole_seconds=True, override_sticks=True)
    timestamp_needs_zone = False              # Moodle's ISO 8601 regex (zone optional — assumed)
    page_default = {"line_items": 0, "results": 0, "memberships": 0}   # §2.3: paging only when limit > 0
    page_max = page_default

    def token_refusal(self, problem: TokenProblem, detail: str) -> Response:
        return json_response({"error": _TOKEN_ERRORS.get(problem, "invalid_request")}, 400,
                             media_type=_PHP_DEFAULT_TYPE)

    def scopes_for(self, kind: str) -> frozenset[str]:
        # §1.6 / §7 #17 (Hypothesis _v13.py): Moodle wants lineitem.readonly explicitly for GETs.
        if kind in ("line_items", "line_item"):
            return frozenset({SCOPE_LINEITEM_READONLY})
        return super().scopes_for(kind)

    def problem(self, status: int, detail: str) -> Response:
        return moodle_error(status, detail)

    def unauthorized(self, message: str) -> Response:
        # §10: check_tool() fails with an empty message → the standard phrase.
        return moodle_error(401, "Unauthorized")

    def insufficient_scope(self) -> Response:
        # §4.3/§10: a token without the endpoint's scope is the same 401 "Unauthorized".
        return moodle_error(401, "Unauthorized")

    def not_found(self, detail: str) -> Response:
        # §10: `Not Found: Course N doesn't exist` (no full stop).
        return moodle_error(404, "Not Found: " + detail.rstrip("."))

    def item_missing(self, item: LineItemRecord | None) -> Response:
        return moodle_error(404, "Line item does not exist")

    def request_refusal(self, request: Request, reg: Registration, kind: str) -> Response | None:
        _REQUEST.set(request)
        # §2.3: `?type_id=` is part of every AGS URL; a client that appends /scores after the query
        # string sends type_id "1/scores" (§7 #18) → refused.
        if kind in _AGS_KINDS and request.query_params.get("type_id") != str(reg.type_id):
            return moodle_error(400, "Invalid type_id")
        # §10 services.php: a GET whose Accept (neither empty nor containing */*) no resource serves, or a
        # POST whose Content-Type no resource takes, finds no handler.
        accept = request.headers.get("accept", "") if request.method == "GET" else ""
        ctype = media_type_of(request.headers.get("content-type")) if request.method == "POST" else ""
        formats = _FORMATS.get(kind, ())
        no_handler = (request.method == "GET" and accept and "*/*" not in accept and accept not in formats) \
            or (kind == "scores" and ctype != SCORE)
        if no_handler:
            return moodle_error(400, f"No handler found for {_path_info(request)} {accept} {ctype}".rstrip())
        # §10 lineitems.php: only the container type (or no Accept) is a container GET; */* is refused.
        if kind == "line_items" and accept not in ("", LINEITEM_CONTAINER):
            return moodle_error(400, "No context or unsupported content type")
        # §10 results.php: with type_id and a limit, $lastpage is never set → PHP error page, 404.
        if kind == "results" and (QueryParams(request.url.query).get("limit") or "0").strip("0"):
            return Response(RESULTS_CRASH_PAGE, status_code=404, media_type="text/html; charset=utf-8")
        return None

    def filter_line_items(self, items: Sequence[LineItemRecord], request: Request) -> list[LineItemRecord]:
        # §10: Moodle 5.1 reads resource_link_id and falls back to lti_link_id (§2.3: older versions).
        q = request.query_params
        rlid = q.get("resource_link_id") or q.get("lti_link_id")
        rid, tag = q.get("resource_id"), q.get("tag")
        return [li for li in items if not li.deleted
                and (rlid is None or li.resource_link_id == rlid)
                and (rid is None or li.resource_id == rid)
                and (tag is None or li.tag == tag)]

    def page(self, url: URL, rows: Sequence, kind: str, loop: bool) -> tuple[Sequence, str | None]:
        q = QueryParams(url.query)
        limit = _int(q.get("limit"))
        if limit <= 0:
            return rows, None
        start = _int(q.get("from"))
        chunk = rows[start: start + limit] if start >= 0 else []
        if kind == "memberships":
            return chunk, _memberships_link(url, start, limit, len(rows), loop)
        return chunk, _lineitems_link(url, start, limit, len(rows), loop)

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
            return moodle_error(400, "No context or unsupported content type")
        return None

    def visible_results(self, reg: Registration, course: CourseRecord, li: LineItemRecord,
                        user_id: str | None) -> list[ResultRecord]:
        # §3.3: only grades with a timemodified (graded rows) are listed — whatever the enrolment (§10: a
        # suspended learner's result is listed).
        rows = [li.results.get(user_id)] if user_id is not None else list(li.results.values())
        return [r for r in rows if r is not None and r.result_score is not None]

    def result_json(self, ids: urls.ItemUrls, rec: ResultRecord, user_filtered: bool) -> dict:
        # §3.3/§10 result_for_json: id …/results?type_id=…&user_id=…; non-standard `timestamp` =
        # date('c', timemodified), whole seconds with the server's zone; no scoringUserId.
        return drop_none({
            "id": ids.result(rec.user_id),
            "userId": rec.user_id, "resultScore": rec.result_score, "resultMaximum": rec.result_maximum,
            "comment": rec.comment, "scoreOf": ids.item,
            "timestamp": rec.stored_at.replace(microsecond=0).isoformat(),
        })

    def visible_members(self, course: CourseRecord, role: str | None) -> list[Member] | None:
        # §5.3/§10: only active enrolments (suspended absent); role filter on the bare or full role.
        members = [m for m in course.members if m.status == "Active"]
        if role is None:
            return members
        full = role if "://" in role else MEMBERSHIP_NS + role
        return [m for m in members if full in m.roles]

    def member_json(self, m: Member) -> dict:
        # §10 (Moodle 5.1, seen on the wire): status always "Active"; bare short role names, and everyone
        # without moodle/course:manageactivities is a "Learner" — a non-editing teacher (our TeachingAssistant)
        # included, although the gradebook then refuses their scores (gradable() below); plus Moodle's
        # lis_person_sourcedid (the idnumber, '' when unset) and ext_user_username.
        return drop_none({"status": "Active", "roles": ["Instructor" if INSTRUCTOR in m.roles else "Learner"],
                          "user_id": m.user_id, "lis_person_sourcedid": "", "name": m.name,
                          "given_name": m.given_name, "family_name": m.family_name, "email": m.email,
                          "ext_user_username": f"user{m.user_id}"})

    def score_content_type_refusal(self, request: Request) -> Response | None:
        return None                            # refused in request_refusal: services.php finds no handler (§10)

    def bad_score(self, message: str, status: int = 400) -> Response:
        # §10: every validation failure is 400 "Incorrect score received" + the raw request body, body `[]`.
        request = _REQUEST.get()
        raw = getattr(request, "_body", b"") if request is not None else b""   # read already by the endpoint
        return score_refusal(400, b"Incorrect score received" + raw)

    def gradable(self, member: Member | None) -> bool:
        # §4.3/§10: enrolled (onlyactive=false: a suspended = Inactive learner is graded, 200) with a
        # gradebook role (student); a non-editing teacher is refused.
        return member is not None and member.status != "Deleted" and LEARNER in member.roles

    def user_refusal(self, reg: Registration, course: CourseRecord, user_id: str) -> Response | None:
        return None if self.gradable(course.member(user_id)) else self.bad_score("not gradable")

    def stale(self, li: LineItemRecord, rec: ResultRecord | None, score: IncomingScore) -> Response | Stale | None:
        # §4.3/§10: timemodified >= strtotime(timestamp) → 409, whole seconds (same second conflicts).
        if rec is not None and rec.result_score is not None \
                and whole_seconds(rec.stored_at) >= whole_seconds(score.timestamp):
            return score_refusal(409, f"Refusing score with an earlier timestamp for item {li.id} "
                                      f"and user {score.user_id}")
        return None

    def value_refusal(self, score: IncomingScore, li: LineItemRecord) -> Response | None:
        return None                            # §4.3: scoreMaximum defaults to 1; no range checks

    def inactive_refusal(self, li: LineItemRecord) -> Response | None:
        # Moodle has no unpublished items; an item that refuses every score is a locked grade item:
        # §10 500 "Internal Server Error", body `[]`.
        return None if li.active else score_refusal(500, None)

    def score_accepted(self, base_url: str, reg: Registration, course: CourseRecord, li: LineItemRecord,
                       user_id: str) -> Response:
        # §10: 200, empty body, the score media type.
        return Response(b"", status_code=200, media_type=SCORE_TYPE)

    def decorate(self, response: Response) -> Response:
        # §10: response::send() writes every service Content-Type as "<type>; charset=utf-8".
        ctype = response.headers.get("content-type")
        if ctype and "charset" not in ctype:
            response.headers["content-type"] = ctype + "; charset=utf-8"
        return response

    def throttled(self) -> Response:
        # §6.3: no throttling in Moodle's service code; an overloaded web server answers 503 (assumed).
        return text_response("Service Unavailable", 503)


def _int(value: str | None) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def _lineitems_link(url: URL, start: int, limit: int, total: int, loop: bool) -> str:
    """lineitems.php get_json_for_get_request (§10): first, prev (inside the range), canonical, next
    (while more follow), last = from total-limit+1; rels in typographic quotes (§2.3, §7 #19) and targets
    HTML-escaped by moodle_url::out() (`&amp;`, §10)."""
    def link(frm: int) -> str:
        return str(url.include_query_params(limit=limit, **{"from": frm})).replace("&", "&amp;")

    in_range = 0 <= start < total
    parts = [f"<{link(0)}>; rel=“first”"]
    if start > 0 and in_range:
        parts.append(f"<{link(max(0, start - limit))}>; rel=“prev”")
    parts.append(f"<{link(start)}>; rel=“canonical”")
    if loop:
        parts.append(f"<{str(url).replace('&', '&amp;')}>; rel=“next”")
    elif in_range and start + limit <= total - 1:
        parts.append(f"<{link(start + limit)}>; rel=“next”")
    parts.append(f"<{link(max(0, total - limit + 1))}>; rel=“last”")
    return ", ".join(parts)


def _memberships_link(url: URL, start: int, limit: int, total: int, loop: bool) -> str | None:
    """memberships.php (§10): only `<endpoint?limit=L&from=F>; rel="next"` (ASCII quotes) while more follow."""
    endpoint = str(url.replace(query=""))
    if loop:
        return f'<{url}>; rel="next"'
    if start + limit < total:
        return f'<{endpoint}?limit={limit}&from={start + limit}>; rel="next"'
    return None
