"""LtiClient against the sandbox LMS over real loopback HTTP, Canvas and Moodle profiles (issue 3).

Every assertion compares the client's view with the world's state (the ground truth) or with the
sandbox's own request counters — never with the client's view of itself.
"""
from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from sandbox_world import (RecordingTransport, SandboxWorld, learner_without_result, pages, reachable_courses,
                           served_world, unreachable, visible_items, visible_members, visible_results)

from lti_client import (READ_SCOPES, SCOPE_SCORE, ErrorKind, LineItem, LtiClient, LtiError, Member, Result,
                        Score)
from sandbox_lms.state import TEACHING_ASSISTANT

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

REGS = {"canvas": "canvas-main", "moodle": "moodle-main"}
PROFILES = pytest.mark.parametrize("profile", ["canvas", "moodle"])


@pytest.fixture
def sw(tmp_path):
    with served_world(tmp_path, seed=1) as served:
        yield served


async def read_course(client: LtiClient, sw: SandboxWorld, name: str, ctx: str
                      ) -> tuple[list[LineItem], dict[str, list[Result]], list[Member]]:
    """Line items, the results of each, and the roster of one course."""
    items = await client.list_line_items(sw.lineitems_url(name, ctx))
    results = {li.id: await client.list_results(li.id) for li in items}
    members = await client.list_members(sw.memberships_url(name, ctx))
    return items, results, members


def assert_matches_state(sw: SandboxWorld, profile: str, ctx: str, items: list[LineItem],
                         results: dict[str, list[Result]], members: list[Member]) -> None:
    """The client's read of one course equals what the world's state says the platform shows."""
    name = REGS[profile]
    course = sw.state_reg(name).courses[ctx]
    expected_items = {sw.item_url(name, ctx, li.id): li for li in visible_items(course)}
    assert len(items) == len(expected_items)
    assert {li.id for li in items} == set(expected_items)
    for li in items:
        rec = expected_items[li.id]
        assert (li.label, li.score_maximum, li.resource_link_id) == (rec.label, rec.score_maximum, rec.resource_link_id)
        # Moodle sends "" for an unset tag/resourceId (§2.3); absent and empty mean the same.
        assert (li.tag or None, li.resource_id or None) == (rec.tag, rec.resource_id)
        got = {r.user_id: (r.result_score, r.result_maximum, r.comment) for r in results[li.id]}
        assert len(got) == len(results[li.id]), "a user listed twice"
        assert got == visible_results(profile, rec)
        assert all(r.score_of == li.id for r in results[li.id])
        if profile == "moodle":
            # Moodle's non-standard result timestamp: timemodified, whole seconds (§3.3).
            assert {r.user_id: r.timestamp for r in results[li.id]} == \
                {u: rec.results[u].stored_at.replace(microsecond=0) for u in got}
    got_members = {m.user_id: (m.roles, m.name, m.email, m.given_name, m.family_name) for m in members}
    assert len(got_members) == len(members)
    assert got_members == visible_members(course)
    assert all(m.is_active for m in members)


# ---- 1. every course of the registration equals the world's state ------------------------------
@PROFILES
async def test_every_course_reads_as_the_world_state(sw, profile):
    name = REGS[profile]
    reg = sw.state_reg(name)
    if profile == "moodle":
        # The tiny world plants no unreachable Moodle course: remove the tool from one (401 everywhere).
        sw.sandbox.control.set_tool_removed(name, list(reg.courses)[-1])
    blocked = [ctx for ctx, c in reg.courses.items() if unreachable(c)]
    assert blocked and len(blocked) < len(reg.courses)
    async with sw.client(name) as client:
        for ctx, course in reg.courses.items():
            if ctx in blocked:
                for call in (client.list_line_items(sw.lineitems_url(name, ctx)),
                             client.list_members(sw.memberships_url(name, ctx)),
                             client.list_results(sw.item_url(name, ctx, course.line_items[0].id))):
                    with pytest.raises(LtiError) as exc:
                        await call
                    assert exc.value.kind is ErrorKind.course_unreachable, exc.value
                continue
            assert_matches_state(sw, profile, ctx, *await read_course(client, sw, name, ctx))


# ---- 2. accounting: client stats = sandbox counters = the minimum -------------------------------
@PROFILES
async def test_one_course_costs_the_minimum_and_both_sides_agree(sw, profile):
    name = REGS[profile]
    course = reachable_courses(sw.state_reg(name))[0]
    n_items, n_members = len(visible_items(course)), len(visible_members(course))
    # Default page sizes hold a tiny course on one page (Canvas max 50; Moodle unpaged without limit).
    assert n_items < 50 and n_members < 50
    transport = RecordingTransport()
    async with sw.client(name, transport=transport) as client:
        first = await read_course(client, sw, name, course.context_id)
        minimum = {"token": 1, "line_items": 1, "memberships": 1, "results": n_items}
        assert client.stats.requests == minimum
        assert sw.server_counts(name) == minimum
        assert client.stats.retries == 0 and client.stats.throttled == 0
        # No URL fetched twice within one read.
        repeated = [u for u, n in Counter(u for _, u, _, _ in transport.seen).items() if n > 1]
        assert repeated == []

        second = await read_course(client, sw, name, course.context_id)
        assert second == first
        again = {"token": 1, "line_items": 2, "memberships": 2, "results": 2 * n_items}
        assert client.stats.requests == again          # the cached read token is reused
        assert sw.server_counts(name) == again


# ---- 3. paging over real HTTP with tiny pages ---------------------------------------------------
@PROFILES
async def test_tiny_pages_read_the_same_data_in_page_math_requests(sw, profile):
    name = REGS[profile]
    reg = sw.state_reg(name)
    courses = reachable_courses(reg)
    async with sw.client(name) as plain:
        unpaged = [await read_course(plain, sw, name, c.context_id) for c in courses]
    sw.sandbox.control.reset_counters()

    transport = RecordingTransport()
    async with sw.client(name, transport=transport, page_size=2) as client:
        paged = [await read_course(client, sw, name, c.context_id) for c in courses]
    assert paged == unpaged
    for course, read in zip(courses, paged):
        assert_matches_state(sw, profile, course.context_id, *read)

    n_items = sum(len(visible_items(c)) for c in courses)
    # Moodle results never carry `limit`: results paging with type_id crashes Moodle 5.1 (§10).
    results_pages = n_items if profile == "moodle" else \
        sum(pages(len(visible_results(profile, li)), 2) for c in courses for li in visible_items(c))
    expected = {
        "token": 1,
        "line_items": sum(pages(len(visible_items(c)), 2) for c in courses),
        "memberships": sum(pages(len(visible_members(c)), 2) for c in courses),
        "results": results_pages,
    }
    assert client.stats.requests == expected
    assert sw.server_counts(name) == expected
    # The tiny pages really paged every kind of listing (else this test proves nothing).
    assert all(expected[k] > n for k, n in (("line_items", len(courses)), ("memberships", len(courses))))
    if profile == "canvas":
        assert expected["results"] > n_items
    else:
        # Some item holds more results than one page of 2: with `limit` it would have paged.
        assert any(len(visible_results(profile, li)) > 2 for c in courses for li in visible_items(c))
        assert not any("/results" in u and "limit=" in u for _, u, _, _ in transport.seen)

    links = [v for _, _, _, values in transport.seen for v in values]
    nexts = [v for v in links if "next" in v]
    assert nexts
    if profile == "canvas":
        # Canvas: absolute URLs, standard quotes, page/per_page (§2.2).
        assert all(f'<{sw.base_url}/' in v and 'rel="next"' in v and "per_page=2" in v for v in nexts)
    else:
        # Moodle: limit/from; line-item rels in typographic quotes U+201C/U+201D (§2.3), NRPS rel="next" in
        # ASCII quotes (§10, tests/fixtures/moodle-5.1).
        assert all(("rel=\u201cnext\u201d" in v or 'rel="next"' in v) and "limit=2" in v and "from=" in v
                   for v in nexts)
        assert any("rel=\u201cnext\u201d" in v for v in nexts) and any('rel="next"' in v for v in nexts)
    # Every page fetched once.
    assert all(n == 1 for n in Counter(u for _, u, _, _ in transport.seen).values())


# ---- 4. scope grants ---------------------------------------------------------------------------
async def test_moodle_without_score_scope_still_reads(sw):
    name = "moodle-noscore"
    ctx = next(iter(sw.state_reg(name).courses))
    async with sw.client(name) as client:
        grant = await client.score_grant()
        assert not grant.has(SCOPE_SCORE)
        read = await client.read_grant()
        assert read.error is None and READ_SCOPES <= read.granted
        items = await client.list_line_items(sw.lineitems_url(name, ctx))
        assert len(items) == len(visible_items(sw.state_reg(name).courses[ctx]))
        with pytest.raises(LtiError) as exc:
            await client.post_score(items[0].id, Score(sw.state_reg(name).courses[ctx].members[0].user_id, 1, 1,
                                                      datetime.now(timezone.utc)))
        assert exc.value.kind is ErrorKind.auth
    assert sw.server_counts(name).get("scores", 0) == 0      # a doomed POST is never sent


async def test_canvas_revoked_score_scope_is_invalid_scope_and_reads_work(sw):
    name = "canvas-main"
    sw.sandbox.control.set_score_scope(name, False)
    ctx = reachable_courses(sw.state_reg(name))[0].context_id
    async with sw.client(name) as client:
        grant = await client.score_grant()
        assert not grant.has(SCOPE_SCORE)
        assert grant.error is not None and grant.error.kind is ErrorKind.auth
        assert grant.error.error_type == "invalid_scope", grant.error
        assert_matches_state(sw, "canvas", ctx, *await read_course(client, sw, name, ctx))
        # The refusal is remembered: asking again costs no second token request.
        await client.score_grant()
    assert client.stats.requests["token"] == 2 == sw.server_counts(name)["token"]   # one read, one score


# ---- 5. score POST semantics ---------------------------------------------------------------------
@PROFILES
async def test_score_post_then_stale_then_refusals(sw, profile):
    name = REGS[profile]
    reg = sw.state_reg(name)
    course, li, user = learner_without_result(profile, reg)
    ctx, item_url = course.context_id, sw.item_url(name, course.context_id, li.id)
    # Both timestamps inside one second: Canvas compares full precision (400), Moodle whole seconds (409).
    second = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=5)
    newer, older = second.replace(microsecond=900_000), second.replace(microsecond=100_000)
    async with sw.client(name) as client:
        assert await client.list_results(item_url, user_id=user) == []
        await client.post_score(item_url, Score(user, 3, 4, newer, comment="well done"))
        shown = await client.list_results(item_url, user_id=user)
        # Canvas reads a tool-graded result back raw (scoreGiven / sent maximum, Lti::Result
        # scaled_result_score); Moodle rescales to the item. Either way the normalised value is the score's.
        assert [(r.user_id, r.result_score / r.result_maximum) for r in shown] == [(user, pytest.approx(3 / 4))]

        with pytest.raises(LtiError) as exc:
            await client.post_score(item_url, Score(user, 4, 4, older))
        assert exc.value.kind is ErrorKind.stale_timestamp, exc.value
        assert exc.value.status == {"canvas": 400, "moodle": 409}[profile]
        assert [r.result_score / r.result_maximum
                for r in await client.list_results(item_url, user_id=user)] == [pytest.approx(3 / 4)]

        ta = next(m.user_id for m in course.members if m.user_id != user
                  and m.status == "Active" and any(r.endswith("#Learner") for r in m.roles))
        sw.sandbox.control.set_member(name, ctx, ta, roles=[TEACHING_ASSISTANT])
        with pytest.raises(LtiError) as exc:
            await client.post_score(item_url, Score(ta, 1, 1, datetime.now(timezone.utc)))
        assert exc.value.kind is ErrorKind.not_learner, exc.value

        if profile == "canvas":
            sw.sandbox.control.set_published(name, ctx, li.id, False)
            with pytest.raises(LtiError) as exc:
                await client.post_score(item_url, Score(user, 4, 4, datetime.now(timezone.utc)))
            assert exc.value.kind is ErrorKind.item_inactive, exc.value
            assert exc.value.status == 422
    # Every POST reached the platform exactly once (no retry of a refused score) and one score token.
    assert sw.sandbox.counters.scores_for(name, ctx, li.id, user) == (3 if profile == "canvas" else 2)
    assert sw.sandbox.counters.scores_for(name, ctx, li.id, ta) == 1
    assert client.stats.requests["scores"] == sw.server_counts(name)["scores"] == (4 if profile == "canvas" else 3)
    assert client.stats.requests["token"] == 2 == sw.server_counts(name)["token"]


# ---- 6. token expiry mid-read -------------------------------------------------------------------
@PROFILES
async def test_expired_token_mid_read_is_refreshed_once(sw, profile):
    name = REGS[profile]
    course = reachable_courses(sw.state_reg(name))[0]
    ctx = course.context_id
    async with sw.client(name) as client:
        items = await client.list_line_items(sw.lineitems_url(name, ctx))
        assert sw.sandbox.control.expire_tokens(name) == 1
        results = {li.id: await client.list_results(li.id) for li in items}
        members = await client.list_members(sw.memberships_url(name, ctx))
    assert_matches_state(sw, profile, ctx, items, results, members)
    # One extra token and one repeated request (the one answered 401); nothing else.
    expected = {"token": 2, "line_items": 1, "results": len(items) + 1, "memberships": 1}
    assert client.stats.requests == expected
    assert sw.server_counts(name) == expected


async def test_concurrent_reads_after_expiry_share_one_refresh(sw):
    name = "canvas-main"
    ctx = reachable_courses(sw.state_reg(name))[0].context_id
    async with sw.client(name) as client:
        items = await client.list_line_items(sw.lineitems_url(name, ctx))
        sw.sandbox.control.expire_tokens(name)
        await asyncio.gather(*(client.list_results(li.id) for li in items))
    # Each in-flight request may meet the expired token once, but the refreshes share the lock:
    # the token endpoint is asked at most once more.
    assert client.stats.requests["token"] == sw.server_counts(name)["token"] == 2
