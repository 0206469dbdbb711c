"""Errors as data: the vendor error tables (every row of §7 the pipeline depends on), error-body
parsing (Canvas object/array, OAuth, plain text), and LtiError behaviour."""
from __future__ import annotations

import pickle
from datetime import datetime, timezone

import httpx
import pytest
from lti_fakes import HOST, FakeLms, json_response

from lti_client import Endpoint, ErrorKind, LtiError, LtiErrorInfo, Score, classify
from lti_client.errors import parse_error_body

CANVAS_UNPUBLISHED = ('{"errors":[{"field":"grade","message":"cannot be changed at this time: '
                      'This assignment is still unpublished","error_code":null}]}')
CANVAS_NOT_STUDENT = '{"errors":{"type":"unprocessable_entity","message":"User not found in course or is not a student"}}'
CANVAS_STALE = ('{"errors":{"type":"bad_request","message":"Provided timestamp of 2026-01-01T00:00:00.000Z before '
                'last updated timestamp of 2026-01-02T00:00:00.123Z"}}')
CANVAS_CONCLUDED = ('{"errors":{"type":"unprocessable_entity","message":"This course has concluded. '
                    'AGS requests will no longer be accepted for this course."}}')
CANVAS_THROTTLE = "403 Forbidden (Rate Limit Exceeded)"

# (vendor, status, body, endpoint, kind) — lti-platform-behavior.md §7 rows and diagnosis-rules.
TABLE = [
    # §7 #1 Canvas unpublished assignment → item_not_active
    ("canvas", 422, CANVAS_UNPUBLISHED, "scores", ErrorKind.item_inactive),
    # §7 #2/#3 Canvas not a student → not_learner
    ("canvas", 422, CANVAS_NOT_STUDENT, "scores", ErrorKind.not_learner),
    # §7 #5 Canvas concluded course: 422 with the flag, 404 without
    ("canvas", 422, CANVAS_CONCLUDED, "scores", ErrorKind.course_unreachable),
    ("canvas", 422, CANVAS_CONCLUDED, "line_items", ErrorKind.course_unreachable),
    ("canvas", 404, "", "scores", ErrorKind.course_unreachable),
    # §7 #6 deleted assignment: 404 empty body on a results GET = error of the course
    ("canvas", 404, "", "results", ErrorKind.course_unreachable),
    # §7 #7 Canvas stale timestamp → manual_grade_conflict
    ("canvas", 400, CANVAS_STALE, "scores", ErrorKind.stale_timestamp),
    # §7 #11 max attempts: not a finding category
    ("canvas", 422, '{"errors":{"message":"The maximum number of allowed attempts has been reached"}}',
     "scores", ErrorKind.other),
    # §7 #12 expired token after the refresh
    ("canvas", 401, '{"errors":{"type":"unauthorized","message":"Access token expired"}}', "line_items",
     ErrorKind.course_unreachable),
    # §6.1 Canvas throttle on every endpoint, and 429 per newer docs
    ("canvas", 403, CANVAS_THROTTLE, "line_items", ErrorKind.throttled),
    ("canvas", 403, CANVAS_THROTTLE, "scores", ErrorKind.throttled),
    ("canvas", 403, CANVAS_THROTTLE, "token", ErrorKind.throttled),
    ("canvas", 429, "", "memberships", ErrorKind.throttled),
    ("canvas", 403, '{"errors":{"type":"forbidden"}}', "memberships", ErrorKind.course_unreachable),
    # §7 #15 Moodle not gradable → not_learner; §7 #16 Moodle 409 → stale
    ("moodle", 400, "Incorrect score received", "scores", ErrorKind.not_learner),
    ("moodle", 409, "Refusing score with an earlier timestamp for item 4 and user 7", "scores",
     ErrorKind.stale_timestamp),
    ("moodle", 403, "Line item does not exist.", "scores", ErrorKind.course_unreachable),
    # §10 Moodle 5.1: refusals carry body [] (text only in the reason phrase): status + endpoint decide.
    ("moodle", 400, "[]", "scores", ErrorKind.not_learner),
    ("moodle", 400, "", "scores", ErrorKind.not_learner),
    ("moodle", 409, "[]", "scores", ErrorKind.stale_timestamp),
    # §10 locked grade: 500 with [] is a refusal (other), a 500 with a PHP error page is transient.
    ("moodle", 500, "[]", "scores", ErrorKind.other),
    ("moodle", 500, "", "scores", ErrorKind.other),
    ("moodle", 500, "<html><body>Fatal error: database connection lost</body></html>", "scores",
     ErrorKind.transient),
    ("moodle", 500, "[]", "results", ErrorKind.transient),
    ("moodle", 400, "", "line_items", ErrorKind.other),
    # §7 #20 Blackboard user not found; diagnosis-rules Blackboard "not available"
    ("blackboard", 400, '{"status":400,"message":"User could not be found: _123_1"}', "scores", ErrorKind.not_learner),
    ("blackboard", 409, '{"message":"Grade column is not available"}', "scores", ErrorKind.item_inactive),
    # §7 #22 D2L 403 / 404 / 422 on score POST → not_learner only when the text says so (issue 10 §3)
    ("d2l", 403, "User in requested score is not enrolled in the org unit", "scores", ErrorKind.not_learner),
    ("d2l", 404, "User in requested score does not exist", "scores", ErrorKind.not_learner),
    ("d2l", 422, '{"detail":"User in requested score has a role that cannot be graded in Grades"}', "scores",
     ErrorKind.not_learner),
    ("d2l", 403, '{"detail":"Forbidden"}', "scores", ErrorKind.course_unreachable),
    ("d2l", 403, "", "scores", ErrorKind.course_unreachable),
    ("d2l", 404, '{"detail":"Line item does not exist"}', "scores", ErrorKind.course_unreachable),
    ("d2l", 404, "", "scores", ErrorKind.course_unreachable),
    ("d2l", 422, "", "scores", ErrorKind.other),
    ("d2l", 422, '{"detail":"scoreGiven must be a number"}', "scores", ErrorKind.other),
    ("d2l", 422, '{"detail":"scoringUserId is not valid"}', "scores", ErrorKind.other),
    ("d2l", 422, "The user's role does not have Can be graded in Grades", "scores", ErrorKind.not_learner),
    ("d2l", 403, "", "line_items", ErrorKind.course_unreachable),
    ("d2l", 429, "", "scores", ErrorKind.throttled),
    # diagnosis-rules course_unreachable: 401/403/404/422 on line items, memberships, results, every vendor
    *[(v, s, "", ep, ErrorKind.course_unreachable)
      for v in ("canvas", "moodle", "blackboard", "d2l", "generic")
      for s in (401, 403, 404, 422) for ep in ("line_items", "memberships", "results")],
    # token endpoint: OAuth refusals are auth (grades_not_accepted); 5xx is transient
    ("canvas", 400, '{"error":"invalid_scope"}', "token", ErrorKind.auth),
    ("canvas", 401, '{"error":"invalid_client"}', "token", ErrorKind.auth),
    ("moodle", 400, '{"error":"invalid_request"}', "token", ErrorKind.auth),
    ("d2l", 400, '{"error":"invalid_grant","error_description":"Error validating assertion"}', "token", ErrorKind.auth),
    ("generic", 502, "", "token", ErrorKind.transient),
    # 5xx is transient everywhere; the other vendors' texts do not leak into the generic table
    ("generic", 503, "", "results", ErrorKind.transient),
    ("generic", 422, CANVAS_UNPUBLISHED, "scores", ErrorKind.other),
    ("generic", 400, "Incorrect score received", "scores", ErrorKind.other),
]


@pytest.mark.parametrize("vendor, status, body, endpoint, kind", TABLE)
def test_classify_table(vendor, status, body, endpoint, kind):
    assert classify(vendor, status, body, endpoint) is kind


def test_classify_matches_numeric_status_not_reason_phrase():
    # HTTP/2 has no reason phrase (§7 #26); a phrase in the body must not decide the kind either.
    assert classify("canvas", 400, "422 Unprocessable Entity: not a student", Endpoint.scores) is ErrorKind.other
    assert classify("canvas", 422, b"User not found in course or is not a student", "scores") is ErrorKind.not_learner


@pytest.mark.parametrize("body, expected", [
    (CANVAS_UNPUBLISHED, (None, "grade: cannot be changed at this time: This assignment is still unpublished")),
    (CANVAS_NOT_STUDENT, ("unprocessable_entity", "User not found in course or is not a student")),
    ('{"error":"invalid_scope","error_description":"scopes not granted"}', ("invalid_scope", "scopes not granted")),
    ('{"error":"invalid_client"}', ("invalid_client", "invalid_client")),
    ("Incorrect score received", (None, "Incorrect score received")),
    ("", (None, "HTTP 404 with an empty body")),
    ('{"message":"User could not be found: _1_1","status":400}', (None, "User could not be found: _1_1")),
    ('[{"field":"score","message":"bad"}]', (None, "score: bad")),
])
def test_parse_error_body_forms(body, expected):
    assert parse_error_body(body, 404 if not body else 400) == expected


def test_lti_error_shortcuts_str_and_pickle():
    info = LtiErrorInfo(ErrorKind.not_learner, 422, "unprocessable_entity", "not a student", "https://h/x")
    err = LtiError(info)
    assert (err.kind, err.status, err.message, err.url, err.error_type) == (
        ErrorKind.not_learner, 422, "not a student", "https://h/x", "unprocessable_entity")
    assert str(err) == "not_learner HTTP 422 [unprocessable_entity]: not a student (https://h/x)"
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, LtiError) and back.info == info


SCORE = Score(user_id="u1", score_given=1, score_maximum=1, timestamp=datetime(2026, 3, 1, tzinfo=timezone.utc))


@pytest.mark.anyio
@pytest.mark.parametrize("vendor, path, response, kind, etype", [
    ("canvas", "/api/lti/courses/7/line_items/1/scores", httpx.Response(422, text=CANVAS_UNPUBLISHED),
     ErrorKind.item_inactive, None),
    ("canvas", "/api/lti/courses/7/line_items/1/scores", httpx.Response(400, text=CANVAS_STALE),
     ErrorKind.stale_timestamp, "bad_request"),
    ("moodle", "/mod/lti/services.php/2/lineitems/4/lineitem/scores",
     httpx.Response(409, text="Refusing score with an earlier timestamp"), ErrorKind.stale_timestamp, None),
    ("d2l", "/d2l/api/lti/ags/2p0/deployment/d/orgunit/7/lineitems/1/scores",
     httpx.Response(403, text="User in requested score is not enrolled in the org unit"), ErrorKind.not_learner, None),
])
async def test_refused_score_post_becomes_a_typed_error(make_reg, make_client, vendor, path, response, kind, etype):
    lms = FakeLms(vendor)
    lms.route("POST", path, response)
    item = f"https://{HOST}{path.removesuffix('/scores')}" + ("?type_id=3" if vendor == "moodle" else "")
    async with make_client(make_reg(vendor), lms) as client:
        with pytest.raises(LtiError) as info:
            await client.post_score(item, SCORE)
    assert info.value.kind is kind and info.value.status == response.status_code
    assert info.value.error_type == etype and info.value.message
    assert info.value.url == f"https://{HOST}{path}" + ("?type_id=3" if vendor == "moodle" else "")
    assert len(lms.calls(path)) == 1


@pytest.mark.anyio
async def test_error_url_is_redacted(make_reg, make_client):
    lms = FakeLms("canvas")
    lms.route("GET", "/api/lti/courses/7/line_items", json_response({"errors": {"message": "nope"}}, 404))
    async with make_client(make_reg("canvas"), lms) as client:
        with pytest.raises(LtiError) as info:
            await client.list_line_items(f"https://{HOST}/api/lti/courses/7/line_items?access_token=abc123xyz&x=1")
    assert "abc123xyz" not in str(info.value) and "x=1" in info.value.url
