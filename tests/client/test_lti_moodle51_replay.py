"""Real Moodle 5.1's wire behaviour (lti-platform-behavior.md §10) replayed through httpx.MockTransport:
refusals read from status + endpoint + reason phrase (body `[]`), `&amp;` Link targets, results never
paged, strict Accept, and one broken results URL that leaves only its line item unverified."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from urllib.parse import parse_qs

import httpx
import pytest
from moodle51_wire import (BASE, HOST, LINEITEM_CONTAINER, LINEITEMS_PATH, LINEITEMS_URL, MEMBERSHIPS_PATH,
                           MEMBERSHIPS_URL, TOKEN_PATH, Moodle51, item_url, results_path, scores_path, status_line)

from gradesync.audit.extract import extract_course
from lti_client import SCOPE_SCORE, ErrorKind, LtiClient, LtiError, Score, classify

pytestmark = pytest.mark.anyio

SERVICES_ITEM = "/mod/lti/services.php/2/lineitems/5/lineitem?type_id=1"
REFUSED_PHRASE = ('Incorrect score received{"userId":"3","scoreGiven":75,"scoreMaximum":100,'
                  '"activityProgress":"Completed","gradingProgress":"FullyGraded","timestamp":"2026-11-20T10:00:00.000Z"}')


@pytest.fixture
def moodle_reg(make_reg):
    def make(**overrides):
        return make_reg("moodle", issuer=BASE, token_url=f"{BASE}{TOKEN_PATH}", allowed_hosts=[HOST], **overrides)
    return make


def _score(user: str) -> Score:
    return Score(user_id=user, score_given=75, score_maximum=100, timestamp=datetime.now(timezone.utc))


def _query(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.url.query.decode())


# ---- score refusals: status + endpoint decide, the reason phrase is the message -----------------------
async def test_moodle_400_with_reason_phrase_and_empty_array_is_not_learner_with_the_phrase_kept(moodle_reg, make_client):
    lms = Moodle51()
    lms.score_answers[(5, "3")] = status_line(400, REFUSED_PHRASE)
    async with make_client(moodle_reg(), lms) as client:
        with pytest.raises(LtiError) as exc:
            await client.post_score(item_url(5), _score("3"))
    err = exc.value
    assert err.kind is ErrorKind.not_learner and err.status == 400
    assert err.message.startswith("Incorrect score received{") and '"userId":"3"' in err.message
    # What the resync logs as the passback `response` holds the phrase and classifies back the same way.
    assert "Incorrect score received" in str(err)
    assert classify("moodle", 400, str(err), "scores") is ErrorKind.not_learner
    assert lms.paths().count(scores_path(5)) == 1                       # a refusal is never re-sent


async def test_moodle_400_without_reason_phrase_is_still_not_learner(moodle_reg, make_client):
    # Behind HTTP/2 or a proxy the phrase is gone (§10): the status on the scores endpoint decides.
    lms = Moodle51()
    lms.score_answers[(5, "3")] = httpx.Response(400, content=b"[]")
    async with make_client(moodle_reg(), lms) as client:
        with pytest.raises(LtiError) as exc:
            await client.post_score(item_url(5), _score("3"))
    assert exc.value.kind is ErrorKind.not_learner and exc.value.message == "HTTP 400 with body []"


async def test_moodle_409_reason_phrase_is_stale_timestamp(moodle_reg, make_client):
    lms = Moodle51()
    lms.score_answers[(5, "11")] = status_line(409, "Refusing score with an earlier timestamp for item 5 and user 11")
    async with make_client(moodle_reg(), lms) as client:
        with pytest.raises(LtiError) as exc:
            await client.post_score(item_url(5), _score("11"))
    assert exc.value.kind is ErrorKind.stale_timestamp
    assert exc.value.message == "Refusing score with an earlier timestamp for item 5 and user 11"


async def test_moodle_500_with_empty_array_is_a_locked_grade_not_a_transient_fault(moodle_reg, make_client):
    lms = Moodle51()
    lms.score_answers[(6, "12")] = httpx.Response(500, content=b"[]")
    async with make_client(moodle_reg(), lms) as client:
        with pytest.raises(LtiError) as exc:
            await client.post_score(item_url(6), _score("12"))
        assert await client.post_score(item_url(6), _score("13")) is None    # 200, empty body: accepted
    assert exc.value.kind is ErrorKind.other and exc.value.status == 500
    assert "locked" in exc.value.message and "[]" in exc.value.message
    assert lms.paths().count(scores_path(6)) == 2


def test_a_standard_reason_phrase_is_not_taken_as_text():
    from lti_client.http import reason_phrase
    assert reason_phrase(httpx.Response(400, extensions={"reason_phrase": b"Bad Request"})) == ""
    assert reason_phrase(httpx.Response(400)) == ""
    assert reason_phrase(status_line(400, "Incorrect score received{\"userId\":\"Zoë\"}")).endswith("Zoë\"}")


# ---- line items: &amp; in Link targets, strict Accept -------------------------------------------------
async def test_moodle_amp_escaped_curly_quote_link_is_followed_without_duplicates(moodle_reg, make_client):
    lms = Moodle51(items=[5, 6, 7, 8, 9])
    async with make_client(moodle_reg(page_size=2), lms) as client:
        items = await client.list_line_items(LINEITEMS_URL)
    assert [li.id for li in items] == [item_url(i) for i in (5, 6, 7, 8, 9)]
    gets = [r for r in lms.requests if r.url.path == LINEITEMS_PATH]
    assert [(_query(r)["limit"], _query(r).get("from")) for r in gets] == [(["2"], None), (["2"], ["2"]), (["2"], ["4"])]
    assert not any("amp;" in str(r.url) for r in gets)
    # The container GET names the container media type: Moodle answers `Accept: */*` with 400 (§10).
    assert {r.headers["accept"] for r in gets} == {LINEITEM_CONTAINER}


# ---- results: never `limit`, even with a page_size -------------------------------------------------
async def test_moodle_results_are_never_paged_even_with_a_registration_page_size(moodle_reg, make_client):
    lms = Moodle51()
    async with make_client(moodle_reg(page_size=2), lms) as client:
        results = await client.list_results(item_url(5))
        members = await client.list_members(MEMBERSHIPS_URL)
    assert sorted(r.user_id for r in results) == ["11", "12", "13"]
    assert all(r.timestamp == datetime(2026, 11, 20, 10, tzinfo=timezone.utc) for r in results)
    res_gets = [r for r in lms.requests if r.url.path == results_path(5)]
    assert len(res_gets) == 1 and "limit" not in _query(res_gets[0]) and _query(res_gets[0])["type_id"] == ["1"]
    # NRPS is still paged (ASCII Link rel="next", §10), bare role names read as Learner.
    assert len(members) == 6 and sum(m.is_learner for m in members) == 5
    assert [_query(r).get("from") for r in lms.requests if r.url.path == MEMBERSHIPS_PATH] == [None, ["2"], ["4"]]


# ---- extraction: one broken results URL leaves only that item unverified ------------------------------
async def test_one_results_404_html_page_makes_that_item_unverified_not_the_course(moodle_reg, make_client):
    lms = Moodle51()
    lms.broken_results.add(6)
    async with make_client(moodle_reg(), lms) as client:
        snap = await extract_course(client, LINEITEMS_URL, MEMBERSHIPS_URL)
    assert snap.error is None
    assert [li.id for li in snap.line_items] == [item_url(5), item_url(6), item_url(7)]
    assert set(snap.results) == {item_url(5), item_url(7)}
    assert all(len(rs) == 3 for rs in snap.results.values())
    assert set(snap.item_errors) == {item_url(6)}
    err = snap.item_errors[item_url(6)]
    assert err.status == 404 and "Call to a member function out() on null" in err.message
    assert len(snap.members) == 6
    # The other items were still read, and the broken URL was asked once (a 404 is not retried).
    assert lms.paths().count(results_path(6)) == 1 and lms.paths().count(results_path(7)) == 1


async def test_line_items_or_memberships_failure_still_fails_the_course(moodle_reg, make_client):
    # §10: a deleted course → 404 "Not Found: Course 2 doesn't exist" on line items and memberships.
    gone = status_line(404, "Not Found: Course 2 doesn't exist", b"")
    for broken in (LINEITEMS_PATH, MEMBERSHIPS_PATH):
        lms = Moodle51()
        handle = lms.handle
        lms.transport = httpx.MockTransport(lambda req, h=handle, b=broken: gone if req.url.path == b else h(req))
        async with make_client(moodle_reg(), lms) as client:
            with pytest.raises(LtiError) as exc:
                await extract_course(client, LINEITEMS_URL, MEMBERSHIPS_URL)
        assert exc.value.kind is ErrorKind.course_unreachable and exc.value.status == 404
        assert exc.value.message == "Not Found: Course 2 doesn't exist"


async def test_a_throttled_or_failing_results_url_still_fails_the_course_for_a_retry(make_reg, make_client):
    # Transient faults are retried as a whole course by the extract task: not an item verdict.
    lms = Moodle51()
    handle = lms.handle
    lms.transport = httpx.MockTransport(
        lambda req: httpx.Response(503, text="down") if req.url.path == results_path(7) else handle(req))
    reg = make_reg("moodle", issuer=BASE, token_url=f"{BASE}{TOKEN_PATH}", allowed_hosts=[HOST])
    async with make_client(reg, lms, max_retries=1) as client:
        with pytest.raises(LtiError) as exc:
            await extract_course(client, LINEITEMS_URL, MEMBERSHIPS_URL)
    assert exc.value.kind is ErrorKind.transient


# ---- the reason phrase over a real socket: what httpx's own transport hands the client ----------------
async def _raw_moodle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers like PHP's `header("HTTP/1.0 {code} {reason}")` (§10): token granted, every score refused."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    await reader.readexactly(length)
    if b" /mod/lti/token.php " in head.split(b"\r\n", 1)[0]:
        body = json.dumps({"access_token": "moodle-raw-token-1", "token_type": "Bearer", "expires_in": 3600,
                           "scope": SCOPE_SCORE}).encode()
        status = b"HTTP/1.0 200 OK"
    else:
        body, status = b"[]", b"HTTP/1.0 400 " + REFUSED_PHRASE.encode()
    writer.write(status + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
                 + b"\r\nConnection: close\r\n\r\n" + body)
    await writer.drain()
    writer.close()


@pytest.mark.timeout(30)
async def test_reason_phrase_from_a_real_http10_status_line_reaches_the_error(make_reg):
    server = await asyncio.start_server(_raw_moodle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    reg = make_reg("moodle", issuer=base, token_url=f"{base}{TOKEN_PATH}", allowed_hosts=["127.0.0.1"])
    async with server, LtiClient(reg) as client:
        with pytest.raises(LtiError) as exc:
            await client.post_score(f"{base}{SERVICES_ITEM}", _score("3"))
    assert exc.value.kind is ErrorKind.not_learner and exc.value.message == REFUSED_PHRASE
