"""Throttling, retries and faults: Retry-After, Canvas 403 throttle, 5xx, timeouts, malformed JSON,
POSTs never retried blindly, pacing on a low bucket, bounded concurrency, no redirects."""
from __future__ import annotations

import asyncio
import email.utils
from datetime import datetime, timezone

import httpx
import pytest
from lti_fakes import HOST, FakeLms, json_response

from lti_client import ErrorKind, LtiError, Score

pytestmark = pytest.mark.anyio

LI = "/api/lti/courses/7/line_items"
LI_URL = f"https://{HOST}{LI}"
SCORES = f"{LI}/1/scores"
CANVAS_THROTTLE = httpx.Response(403, text="403 Forbidden (Rate Limit Exceeded)",
                                 headers={"Content-Type": "text/plain", "X-Rate-Limit-Remaining": "0.0"})
SCORE = Score(user_id="u1", score_given=3, score_maximum=10, timestamp=datetime(2026, 3, 1, tzinfo=timezone.utc))


async def test_429_honours_retry_after_seconds(make_reg, make_client, fake_time):
    lms = FakeLms("d2l")
    path = "/d2l/api/lti/ags/2p0/deployment/d/orgunit/7/lineitems"
    lms.route("GET", path, httpx.Response(429, headers={"Retry-After": "7"}), json_response([]))
    async with make_client(make_reg("d2l"), lms) as client:
        assert await client.list_line_items(f"https://{HOST}{path}") == []
    assert 7 in fake_time.sleeps
    assert client.stats.throttled == 1 and client.stats.retries == 1
    assert client.stats.throttle_wait_s == pytest.approx(7)
    assert client.stats.requests == {"token": 1, "line_items": 2}


async def test_429_honours_retry_after_http_date(make_reg, make_client, fake_time):
    lms = FakeLms("generic")
    path = "/lti/contexts/c/lineitems"
    when = email.utils.formatdate(fake_time.now + 30, usegmt=True)
    lms.route("GET", path, httpx.Response(429, headers={"Retry-After": when}), json_response([]))
    async with make_client(make_reg("generic"), lms) as client:
        await client.list_line_items(f"https://{HOST}{path}")
    assert client.stats.throttle_wait_s == pytest.approx(30, abs=1)


async def test_canvas_403_rate_limit_is_throttling_and_retried_with_backoff(make_reg, make_client, fake_time):
    lms = FakeLms("canvas")
    bare = httpx.Response(403, text="403 Forbidden (Rate Limit Exceeded)", headers={"Content-Type": "text/plain"})
    lms.route("GET", LI, bare, bare, json_response([]))
    async with make_client(make_reg("canvas"), lms, backoff_base=0.5, backoff_cap=20) as client:
        assert await client.list_line_items(LI_URL) == []
    assert client.stats.throttled == 2 and client.stats.requests["line_items"] == 3
    # No Retry-After on Canvas: exponential backoff with jitter (50–100 % of 0.5 s, then of 1 s).
    waits = [s for s in fake_time.sleeps if s > 0]
    assert 0.25 <= waits[0] <= 0.5 and 0.5 <= waits[1] <= 1.0


async def test_canvas_throttle_with_empty_bucket_waits_at_least_the_pacing_pause(make_reg, make_client, fake_time):
    lms = FakeLms("canvas")
    lms.route("GET", LI, CANVAS_THROTTLE, json_response([], headers={"X-Rate-Limit-Remaining": "600.0"}),
              json_response([], headers={"X-Rate-Limit-Remaining": "600.0"}))
    async with make_client(make_reg("canvas"), lms, backoff_base=0.5, backoff_cap=20) as client:
        await client.list_line_items(LI_URL)
        await client.list_line_items(LI_URL)
    # Remaining 0.0 → the pause is the full pacing step (4 × base), then the refilled bucket → none.
    assert fake_time.sleeps == [pytest.approx(2.0)]


async def test_throttle_exhaustion_raises_throttled(make_reg, make_client):
    lms = FakeLms("canvas")
    lms.route("GET", LI, lambda req: CANVAS_THROTTLE)
    async with make_client(make_reg("canvas"), lms, max_retries=2) as client:
        with pytest.raises(LtiError) as info:
            await client.list_line_items(LI_URL)
    assert info.value.kind is ErrorKind.throttled and info.value.status == 403
    assert len(lms.calls(LI)) == 3 and client.stats.throttled == 3


async def test_canvas_403_without_rate_limit_text_is_not_retried(make_reg, make_client):
    lms = FakeLms("canvas")
    lms.route("GET", LI, lambda req: json_response({"errors": {"type": "forbidden", "message": "no"}}, 403))
    async with make_client(make_reg("canvas"), lms) as client:
        with pytest.raises(LtiError) as info:
            await client.list_line_items(LI_URL)
    assert info.value.kind is ErrorKind.course_unreachable and len(lms.calls(LI)) == 1


async def test_5xx_is_retried_then_succeeds(make_reg, make_client):
    lms = FakeLms("canvas")
    lms.route("GET", LI, httpx.Response(503), httpx.Response(502, text="Bad Gateway"), json_response([]))
    async with make_client(make_reg("canvas"), lms) as client:
        assert await client.list_line_items(LI_URL) == []
    assert client.stats.retries == 2 and client.stats.requests == {"token": 1, "line_items": 3}


async def test_5xx_exhaustion_raises_transient_after_max_retries(make_reg, make_client, fake_time):
    lms = FakeLms("canvas")
    lms.route("GET", LI, lambda req: httpx.Response(500, text="boom"))
    async with make_client(make_reg("canvas"), lms, max_retries=3, backoff_base=1, backoff_cap=2) as client:
        with pytest.raises(LtiError) as info:
            await client.list_line_items(LI_URL)
    assert info.value.kind is ErrorKind.transient and info.value.status == 500 and info.value.message == "boom"
    assert len(lms.calls(LI)) == 4
    assert all(s <= 2 for s in fake_time.sleeps), "backoff is capped"


async def test_timeouts_and_connection_errors_are_retried_for_gets(make_reg, make_client):
    lms = FakeLms("canvas")
    failures = [httpx.ReadTimeout("slow"), httpx.ConnectError("refused")]

    def handler(req):
        if failures:
            raise failures.pop(0)
        return json_response([])
    lms.route("GET", LI, handler)
    async with make_client(make_reg("canvas"), lms) as client:
        assert await client.list_line_items(LI_URL) == []
    assert client.stats.requests["line_items"] == 3 and client.stats.retries == 2


async def test_malformed_json_is_retried_then_succeeds(make_reg, make_client):
    lms = FakeLms("canvas")
    lms.route("GET", LI, httpx.Response(200, text="<html>oops"), json_response([]))
    async with make_client(make_reg("canvas"), lms) as client:
        assert await client.list_line_items(LI_URL) == []
    assert client.stats.requests["line_items"] == 2


async def test_persistently_malformed_json_raises_malformed_after_two_retries(make_reg, make_client):
    lms = FakeLms("canvas")
    lms.route("GET", LI, lambda req: httpx.Response(200, text='[{"id": '))
    async with make_client(make_reg("canvas"), lms) as client:
        with pytest.raises(LtiError) as info:
            await client.list_line_items(LI_URL)
    assert info.value.kind is ErrorKind.malformed and len(lms.calls(LI)) == 3


@pytest.mark.parametrize("failure", [httpx.Response(503), httpx.Response(500, text="locked"),
                                     httpx.ReadTimeout("slow"), httpx.ConnectError("reset")])
async def test_score_post_is_never_retried_on_5xx_or_network_errors(make_reg, make_client, failure):
    lms = FakeLms("canvas")

    def handler(req):
        if isinstance(failure, Exception):
            raise failure
        return failure
    lms.route("POST", SCORES, handler)
    async with make_client(make_reg("canvas"), lms) as client:
        with pytest.raises(LtiError) as info:
            await client.post_score(f"{LI_URL}/1", SCORE)
    assert info.value.kind is ErrorKind.transient
    assert len(lms.calls(SCORES)) == 1 and client.stats.retries == 0


async def test_score_post_is_retried_after_a_throttle_answer(make_reg, make_client):
    lms = FakeLms("canvas")
    lms.route("POST", SCORES, CANVAS_THROTTLE, json_response({"resultUrl": f"{LI_URL}/1/results/5"}))
    async with make_client(make_reg("canvas"), lms) as client:
        assert await client.post_score(f"{LI_URL}/1", SCORE) == {"resultUrl": f"{LI_URL}/1/results/5"}
    assert len(lms.calls(SCORES)) == 2 and client.stats.throttled == 1


async def test_low_rate_limit_remaining_slows_the_next_requests(make_reg, make_client, fake_time):
    lms = FakeLms("canvas")
    lms.route("GET", LI, json_response([], headers={"X-Rate-Limit-Remaining": "20.0"}),
              json_response([], headers={"X-Rate-Limit-Remaining": "590.0"}), json_response([]))
    async with make_client(make_reg("canvas"), lms, backoff_base=0.2, backoff_cap=5) as client:
        await client.list_line_items(LI_URL)
        assert fake_time.sleeps == []
        await client.list_line_items(LI_URL)                 # paced: the bucket is nearly empty
        assert len(fake_time.sleeps) == 1 and 0.2 < fake_time.sleeps[0] <= 0.8
        await client.list_line_items(LI_URL)                 # bucket recovered: no pause
        assert len(fake_time.sleeps) == 1
    assert client.stats.throttled == 0 and client.stats.throttle_wait_s == pytest.approx(fake_time.sleeps[0])


async def test_moodle_ignores_rate_limit_headers(make_reg, make_client, fake_time):
    lms = FakeLms("moodle")
    path = "/mod/lti/services.php/2/lineitems"
    lms.route("GET", path, lambda req: json_response([], headers={"X-Rate-Limit-Remaining": "0"}))
    async with make_client(make_reg("moodle"), lms) as client:
        for _ in range(3):
            await client.list_line_items(f"https://{HOST}{path}?type_id=3")
    assert fake_time.sleeps == []


async def test_concurrency_is_bounded_by_the_registration(make_reg, make_client):
    lms = FakeLms("canvas")
    in_flight = peak = 0

    async def handler(req):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1
        return json_response([])
    for i in range(12):
        lms.route("GET", f"{LI}/{i}/results", handler)
    async with make_client(make_reg("canvas", max_concurrency=3), lms) as client:
        await asyncio.gather(*(client.list_results(f"{LI_URL}/{i}") for i in range(12)))
    assert peak == 3
    assert client.stats.requests == {"token": 1, "results": 12}


async def test_canvas_default_concurrency_is_12(make_reg, make_client):
    lms = FakeLms("canvas")
    in_flight = peak = 0

    async def handler(req):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1
        return json_response([])
    for i in range(20):
        lms.route("GET", f"{LI}/{i}/results", handler)
    async with make_client(make_reg("canvas"), lms) as client:
        await asyncio.gather(*(client.list_results(f"{LI_URL}/{i}") for i in range(20)))
    assert peak == 12             # 600 high-water ÷ 50 per request in flight (§6.1)


async def test_redirects_are_not_followed(make_reg, make_client):
    lms = FakeLms("canvas")
    lms.route("GET", LI, httpx.Response(302, headers={"Location": "https://evil.example.com/x"}))
    async with make_client(make_reg("canvas"), lms) as client:
        with pytest.raises(LtiError) as info:
            await client.list_line_items(LI_URL)
    assert info.value.kind is ErrorKind.other and info.value.status == 302
    assert all(r.url.host == HOST for r in lms.requests)
