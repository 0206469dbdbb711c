"""Read scopes on a platform that refuses a whole token request for one scope not on the key (Canvas,
lti-platform-behavior.md §1.6): a developer key without NRPS, `result.readonly` or `lineitem.readonly`
still audits what it can, in few token requests; the sandbox's Canvas token endpoint (all-or-nothing,
with Canvas's "requested, but not granted: …" text) and a bare `invalid_scope` platform."""
from __future__ import annotations

import pytest
from lti_fakes import HOST, FakeLms, json_response
from sandbox_world import reachable_courses, served_world, visible_items, visible_members, visible_results

from gradesync.audit.extract import extract_course
from lti_client import (READ_SCOPES, SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_NRPS, SCOPE_RESULT_READONLY,
                        SCOPE_SCORE, ErrorKind, LtiError)
from lti_client.types import TokenRefusal

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

NAME = "canvas-main"


@pytest.fixture
def sw(tmp_path):
    with served_world(tmp_path, seed=1) as served:
        yield served


def _without(sw, *scopes: str) -> None:
    """The developer key loses `scopes` (the sandbox registration is the platform's key)."""
    for scope in scopes:
        sw.state_reg(NAME).granted_scopes.discard(scope)


async def test_canvas_key_without_nrps_reads_line_items_and_results_and_refuses_only_the_roster(sw):
    _without(sw, SCOPE_NRPS)
    course = reachable_courses(sw.state_reg(NAME))[0]
    ctx = course.context_id
    async with sw.client(NAME) as client:
        read = await client.read_grant()
        assert read.granted == {SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY} and read.error is None
        items = await client.list_line_items(sw.lineitems_url(NAME, ctx))
        expected = {sw.item_url(NAME, ctx, rec.id): rec for rec in visible_items(course)}
        assert {li.id for li in items} == set(expected)
        for li in items:
            got = {r.user_id: (r.result_score, r.result_maximum, r.comment) for r in await client.list_results(li.id)}
            assert got == visible_results("canvas", expected[li.id])
        with pytest.raises(LtiError) as exc:
            await client.list_members(sw.memberships_url(NAME, ctx))
        assert (await client.score_grant()).has(SCOPE_SCORE)
    err = exc.value.info
    assert err.kind is ErrorKind.auth and err.error_type == "scope_not_granted"
    assert err.refusal is TokenRefusal.scope_refused
    assert SCOPE_NRPS in err.message and "roster" in err.message and err.url.endswith("/names_and_roles")
    # Token requests: the combined read request (refused), the read scopes it did not name, the score scope.
    assert client.stats.requests["token"] == sw.server_counts(NAME)["token"] == 3
    assert "memberships" not in sw.server_counts(NAME)          # the doomed roster GET was never sent


async def test_canvas_key_without_result_scope_audits_the_course_with_every_item_unverified(sw):
    _without(sw, SCOPE_RESULT_READONLY)
    course = reachable_courses(sw.state_reg(NAME))[0]
    ctx = course.context_id
    async with sw.client(NAME) as client:
        snap = await extract_course(client, sw.lineitems_url(NAME, ctx), sw.memberships_url(NAME, ctx))
    assert snap.error is None
    assert len(snap.line_items) == len(visible_items(course))
    assert {m.user_id for m in snap.members} == set(visible_members(course))
    assert snap.results == {}
    assert set(snap.item_errors) == {li.id for li in snap.line_items}
    assert all(e.error_type == "scope_not_granted" and SCOPE_RESULT_READONLY in e.message
               for e in snap.item_errors.values())
    assert sw.server_counts(NAME) == {"token": 2, "line_items": 1, "memberships": 1}


async def test_canvas_key_with_lineitem_but_not_lineitem_readonly_reads_line_items(sw):
    _without(sw, SCOPE_LINEITEM_READONLY)
    course = reachable_courses(sw.state_reg(NAME))[0]
    ctx = course.context_id
    async with sw.client(NAME) as client:
        read = await client.read_grant()
        items = await client.list_line_items(sw.lineitems_url(NAME, ctx))
        members = await client.list_members(sw.memberships_url(NAME, ctx))
    assert read.granted == {SCOPE_LINEITEM, SCOPE_RESULT_READONLY, SCOPE_NRPS}
    assert len(items) == len(visible_items(course)) and len(members) == len(visible_members(course))
    # Combined (refused), {result, NRPS}, {lineitem}: the platform checks each GET's token scopes.
    assert sw.server_counts(NAME) == {"token": 3, "line_items": 1, "memberships": 1}


async def test_canvas_key_with_no_read_scope_raises_scope_refused(sw):
    sw.state_reg(NAME).granted_scopes.intersection_update({SCOPE_SCORE})
    async with sw.client(NAME) as client:
        with pytest.raises(LtiError) as exc:
            await client.read_grant()
        assert (await client.score_grant()).has(SCOPE_SCORE)
    assert exc.value.info.refusal is TokenRefusal.scope_refused and exc.value.error_type == "invalid_scope"
    # Combined (refused, names all three), then `lineitem` alone (refused), then the score scope.
    assert sw.server_counts(NAME) == {"token": 3}


async def test_canvas_full_key_costs_one_read_and_one_score_token_request(sw):
    ctx = reachable_courses(sw.state_reg(NAME))[0].context_id
    async with sw.client(NAME) as client:
        await client.score_grant()
        await extract_course(client, sw.lineitems_url(NAME, ctx), sw.memberships_url(NAME, ctx))
    assert sw.server_counts(NAME)["token"] == 2


# ---- a platform whose invalid_scope names nothing: each read service asked for on its own ----------
LI_PATH = "/api/lti/courses/7/line_items"


async def test_bare_invalid_scope_splits_per_service_and_each_read_uses_its_own_token(make_reg, make_client):
    lms = FakeLms("canvas")
    lms.token_policy = lambda scopes: json_response({"error": "invalid_scope"}, 400) if SCOPE_NRPS in scopes else None
    lms.route("GET", LI_PATH, lambda req: json_response([{"id": f"https://{HOST}{LI_PATH}/1", "label": "A",
                                                          "scoreMaximum": 10}]))
    lms.route("GET", f"{LI_PATH}/1/results", lambda req: json_response([]))
    async with make_client(make_reg("canvas"), lms) as client:
        grant = await client.read_grant()
        items = await client.list_line_items(f"https://{HOST}{LI_PATH}")
        await client.list_results(items[0].id)
        with pytest.raises(LtiError):
            await client.list_members(f"https://{HOST}/api/lti/courses/7/names_and_roles")
    assert grant.granted == {SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY}
    asked = [frozenset(f["scope"].split()) for f in lms.token_forms()]
    assert asked == [READ_SCOPES, {SCOPE_LINEITEM_READONLY}, {SCOPE_RESULT_READONLY}, {SCOPE_NRPS}]
    li_auth = lms.calls(LI_PATH)[0].headers["authorization"]
    res_auth = lms.calls(f"{LI_PATH}/1/results")[0].headers["authorization"]
    assert li_auth == f"Bearer {lms.tokens_issued[0]}" and res_auth == f"Bearer {lms.tokens_issued[1]}"


async def test_moodle_invalid_scope_is_not_split(make_reg, make_client):
    # Moodle grants the intersection; invalid_scope means nothing at all was granted (§1.6, §10).
    lms = FakeLms("moodle")
    lms.token_policy = lambda scopes: json_response({"error": "invalid_scope"}, 400)
    async with make_client(make_reg("moodle"), lms) as client:
        with pytest.raises(LtiError) as exc:
            await client.read_grant()
    assert exc.value.info.refusal is TokenRefusal.scope_refused
    assert len(lms.token_calls()) == 1
