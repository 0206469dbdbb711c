"""Accounting: no request is made twice that needed to be made once, and the stats say so."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import httpx
import pytest
from lti_fakes import HOST, FakeLms, json_response

from lti_client import Score

pytestmark = pytest.mark.anyio

LI = "/api/lti/courses/7/line_items"
LI_URL = f"https://{HOST}{LI}"
NRPS = "/api/lti/courses/7/names_and_roles"


def _paged_line_items(lms: FakeLms, pages: int) -> None:
    def handler(req):
        n = int(dict(p.split("=") for p in req.url.query.decode().split("&") if "=" in p).get("page", "1"))
        link = {"Link": f'<{LI_URL}?page={n + 1}>; rel="next"'} if n < pages else {}
        return json_response([{"id": f"{LI_URL}/{n}", "label": f"L{n}", "scoreMaximum": 1}], headers=link)
    lms.route("GET", LI, handler)


async def test_listing_three_pages_costs_one_token_and_three_requests(make_reg, make_client):
    lms = FakeLms("canvas")
    _paged_line_items(lms, 3)
    async with make_client(make_reg("canvas"), lms) as client:
        items = await client.list_line_items(LI_URL)
    assert len(items) == 3
    assert client.stats.requests == {"token": 1, "line_items": 3}
    assert client.stats.total == 4 == len(lms.requests)
    assert client.stats.retries == 0 and client.stats.throttled == 0 and client.stats.throttle_wait_s == 0


async def test_a_course_read_in_parallel_shares_one_token_request(make_reg, make_client):
    lms = FakeLms("canvas")
    _paged_line_items(lms, 2)
    lms.route("GET", NRPS, json_response({"members": [{"user_id": "u1", "roles": ["Learner"]}]}))
    for i in (1, 2):
        lms.route("GET", f"{LI}/{i}/results", json_response([]))
    async with make_client(make_reg("canvas"), lms) as client:
        items, members = await asyncio.gather(client.list_line_items(LI_URL), client.list_members(f"https://{HOST}{NRPS}"))
        await asyncio.gather(*(client.list_results(li.id) for li in items))
    assert client.stats.requests == {"token": 1, "line_items": 2, "memberships": 1, "results": 2}
    assert client.stats.total == len(lms.requests) == 6


async def test_scores_use_one_score_token_for_many_posts(make_reg, make_client):
    lms = FakeLms("canvas")
    lms.route("POST", f"{LI}/1/scores", lambda req: json_response({"resultUrl": "r"}))
    ts = datetime(2026, 3, 1, tzinfo=timezone.utc)
    async with make_client(make_reg("canvas"), lms) as client:
        await asyncio.gather(*(client.post_score(f"{LI_URL}/1", Score(user_id=f"u{i}", score_given=i,
                                                                        score_maximum=5, timestamp=ts))
                               for i in range(5)))
    assert client.stats.requests == {"token": 1, "scores": 5}


async def test_retries_are_counted_as_requests_and_as_retries(make_reg, make_client):
    lms = FakeLms("canvas")
    lms.route("GET", LI, httpx.Response(503), json_response([]))
    async with make_client(make_reg("canvas"), lms) as client:
        await client.list_line_items(LI_URL)
    assert client.stats.requests == {"token": 1, "line_items": 2} and client.stats.retries == 1
