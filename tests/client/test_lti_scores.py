"""Score POST: body serialisation (0 kept, ms timestamps with zone, submission.submittedAt, Canvas
extension), media types, Moodle `?type_id=` service URLs, return values, record parsing."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from lti_fakes import HOST, FakeLms, json_response

from lti_client import Score
from lti_client.parse import parse_line_item, parse_result, score_body
from lti_client.urls import service_url, with_params

pytestmark = pytest.mark.anyio

CANVAS_ITEM = f"https://{HOST}/api/lti/courses/7/line_items/1"
MOODLE_ITEM = f"https://{HOST}/mod/lti/services.php/2/lineitems/4/lineitem?type_id=3"
EXT = "https://canvas.instructure.com/lti/submission"


def _score(**kw) -> Score:
    fields = dict(user_id="u1", score_given=0.0, score_maximum=10.0,
                  timestamp=datetime(2026, 3, 1, 12, 0, 0, 5000, tzinfo=timezone.utc))
    fields.update(kw)
    return Score(**fields)


@pytest.mark.parametrize("item, service, expected", [
    (MOODLE_ITEM, "scores", f"https://{HOST}/mod/lti/services.php/2/lineitems/4/lineitem/scores?type_id=3"),
    (MOODLE_ITEM, "results", f"https://{HOST}/mod/lti/services.php/2/lineitems/4/lineitem/results?type_id=3"),
    (CANVAS_ITEM, "scores", f"{CANVAS_ITEM}/scores"),
    (CANVAS_ITEM + "/", "results", f"{CANVAS_ITEM}/results"),
])
def test_service_url_goes_on_the_path_and_keeps_the_query(item, service, expected):
    assert service_url(item, service) == expected


def test_with_params_keeps_moodle_type_id():
    url = with_params(service_url(MOODLE_ITEM, "results"), {"user_id": "7", "limit": None})
    assert url.endswith("/lineitem/results?type_id=3&user_id=7")


def test_score_body_keeps_zero_and_uses_millisecond_timestamps_with_zone():
    body = score_body(_score(submitted_at=datetime(2026, 3, 1, 11, 59, tzinfo=timezone(timedelta(hours=2)))))
    assert body["scoreGiven"] == 0 and "scoreGiven" in body and body["scoreMaximum"] == 10
    assert body["timestamp"] == "2026-03-01T12:00:00.005+00:00"
    assert body["submission"] == {"submittedAt": "2026-03-01T09:59:00.000+00:00"}
    assert body["activityProgress"] == "Completed" and body["gradingProgress"] == "FullyGraded"
    assert "comment" not in body
    assert json.loads(json.dumps(body))["scoreGiven"] == 0


def test_naive_timestamps_are_taken_as_utc():
    assert score_body(_score(timestamp=datetime(2026, 3, 1, 12)))["timestamp"] == "2026-03-01T12:00:00.000+00:00"


def test_fractional_scores_are_kept():
    assert score_body(_score(score_given=8.5))["scoreGiven"] == 8.5


async def test_canvas_score_post_sends_extension_media_type_and_returns_result_url(make_reg, make_client):
    lms = FakeLms("canvas")
    path = "/api/lti/courses/7/line_items/1/scores"
    lms.route("POST", path, json_response({"resultUrl": f"{CANVAS_ITEM}/results/3"},
                                          content_type="application/vnd.ims.lis.v1.score+json"))
    async with make_client(make_reg("canvas"), lms) as client:
        reply = await client.post_score(CANVAS_ITEM, _score(comment="well done"))
    assert reply == {"resultUrl": f"{CANVAS_ITEM}/results/3"}
    req = lms.calls(path)[0]
    assert req.headers["content-type"] == "application/vnd.ims.lis.v1.score+json"
    assert req.headers["authorization"] == f"Bearer {lms.tokens_issued[0]}"
    sent = json.loads(req.content)
    # A person's grade is kept unless the send says otherwise (an approved supersede).
    assert sent[EXT] == {"new_submission": False, "prioritize_non_tool_grade": True}
    assert sent["scoreGiven"] == 0 and sent["comment"] == "well done" and sent["userId"] == "u1"
    assert lms.token_forms()[0]["scope"] == "https://purl.imsglobal.org/spec/lti-ags/scope/score"


async def test_canvas_supersede_turns_prioritize_non_tool_grade_off(make_reg, make_client):
    lms = FakeLms("canvas")
    path = "/api/lti/courses/7/line_items/1/scores"
    lms.route("POST", path, json_response({"resultUrl": "x"}))
    async with make_client(make_reg("canvas"), lms) as client:
        await client.post_score(CANVAS_ITEM, _score(keep_non_tool_grade=False))
    assert json.loads(lms.calls(path)[0].content)[EXT]["prioritize_non_tool_grade"] is False


async def test_vendor_extensions_can_be_turned_off(make_reg, make_client):
    lms = FakeLms("canvas")
    path = "/api/lti/courses/7/line_items/1/scores"
    lms.route("POST", path, json_response({"resultUrl": "x"}))
    async with make_client(make_reg("canvas"), lms) as client:
        await client.post_score(CANVAS_ITEM, _score(), vendor_extensions=False)
    assert EXT not in json.loads(lms.calls(path)[0].content)


async def test_moodle_score_post_goes_to_the_path_and_returns_none_for_empty_body(make_reg, make_client):
    lms = FakeLms("moodle")
    path = "/mod/lti/services.php/2/lineitems/4/lineitem/scores"
    lms.route("POST", path, lambda req: httpx.Response(200))
    async with make_client(make_reg("moodle"), lms) as client:
        assert await client.post_score(MOODLE_ITEM, _score()) is None
    req = lms.calls(path)[0]
    assert req.url.query == b"type_id=3"
    sent = json.loads(req.content)
    assert EXT not in sent and sent["scoreGiven"] == 0


async def test_moodle_results_url_and_non_standard_timestamp(make_reg, make_client):
    lms = FakeLms("moodle")
    path = "/mod/lti/services.php/2/lineitems/4/lineitem/results"
    lms.route("GET", path, json_response([
        {"id": f"https://{HOST}{path}?type_id=3&user_id=7", "userId": "7", "resultScore": "8.50",
         "resultMaximum": 10, "scoreOf": MOODLE_ITEM, "timestamp": "2026-03-01T12:00:05+00:00",
         "comment": "ok"}]))
    async with make_client(make_reg("moodle"), lms) as client:
        results = await client.list_results(MOODLE_ITEM, user_id="7")
    req = lms.calls(path)[0]
    assert req.url.query == b"type_id=3&user_id=7"
    r = results[0]
    assert (r.user_id, r.result_score, r.result_maximum, r.comment) == ("7", 8.5, 10.0, "ok")
    assert r.timestamp == datetime(2026, 3, 1, 12, 0, 5, tzinfo=timezone.utc)


def test_line_item_parsing_tolerates_moodle_blanks_and_legacy_link_id():
    li = parse_line_item({"id": MOODLE_ITEM, "label": "Quiz", "scoreMaximum": 100, "resourceId": "",
                          "tag": "", "ltiLinkId": "12", "endDateTime": "2026-06-30T23:59:00Z"})
    assert (li.resource_id, li.tag, li.resource_link_id) == (None, None, "12")
    assert li.end_date_time == datetime(2026, 6, 30, 23, 59, tzinfo=timezone.utc)


def test_result_defaults_and_missing_score():
    r = parse_result({"userId": "u1"})
    assert r.result_score is None and r.result_maximum == 1.0 and r.scoring_user_id is None
    assert parse_result({"userId": "u1", "resultScore": 0, "scoringUserId": "t9"}).result_score == 0
