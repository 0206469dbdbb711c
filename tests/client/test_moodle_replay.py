"""The real LtiClient against recordings of a real Moodle 5.1+ (Build 20251017), replayed through
httpx.MockTransport with their reason phrases (tests/fixtures/moodle-5.1, made by tests/real/moodle/record.py).

Every expectation is read from the recordings themselves (ids, bodies, status lines), so re-recording on
another build re-checks the client against that build. A request no recording answers fails the test."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
from real.moodle.recordings import Replay, build, load

from gradesync.audit.extract import extract_course
from lti_client import ErrorKind, LtiError, Score
from lti_client.types import SCOPE_NRPS, SCOPE_SCORE, TokenRefusal

pytestmark = pytest.mark.anyio
BUILD = build()
WORLD = BUILD["world"]
WWW = BUILD["wwwroot"]
HOST = urlsplit(WWW).hostname
TOKEN_URL = f"{WWW}/mod/lti/token.php"
LINEITEMS_URL = load("lineitems_all")["request"]["url"]
MEMBERSHIPS_URL = load("memberships_all")["request"]["url"]
QUIZ_RLID = str(WORLD["activities"]["quiz"]["instance"])
QUIZ_ITEM = WORLD["line_items"][QUIZ_RLID]
ESSAY_ITEM = WORLD["line_items"][str(WORLD["activities"]["essay"]["instance"])]
LAB_ITEM = WORLD["line_items"][str(WORLD["activities"]["lab"]["instance"])]
READ_TOKEN = ["token_read_scopes"]
SCORE_TOKEN = ["token_score_scope"]


def uid(key: str) -> str:
    return str(WORLD["users"][key])


def body_of(name: str):
    return json.loads(load(name)["response"]["body"])


def reason_of(name: str) -> str:
    return load(name)["response"]["reason"]


@pytest.fixture
def moodle(make_reg, make_client):
    """make(recording names, **registration overrides) → (client, replay)."""
    def make(names: list[str], **overrides):
        replay = Replay(names)
        reg = make_reg("moodle", issuer=WWW, token_url=TOKEN_URL, allowed_hosts=[HOST], **overrides)
        return make_client(reg, replay), replay
    return make


def score(user: str, given: float = 75, maximum: float = 100) -> Score:
    return Score(user_id=user, score_given=given, score_maximum=maximum, timestamp=datetime.now(timezone.utc))


# ---- token ----------------------------------------------------------------------------------------
async def test_read_grant_is_what_moodle_granted(moodle):
    client, _ = moodle(READ_TOKEN)
    grant = await client.read_grant()
    assert grant.granted == frozenset(body_of("token_read_scopes")["scope"].split())


async def test_type_with_grade_sync_off_refuses_the_score_scope_as_scope_refused(moodle):
    client, _ = moodle(["token_nosync_score_scope"])
    grant = await client.score_grant()
    assert grant.error is not None and grant.refusal_for(SCOPE_SCORE) is TokenRefusal.scope_refused


async def test_type_with_grade_sync_off_grants_only_nrps_and_line_items_are_not_requested(moodle):
    client, replay = moodle(["token_nosync_read_scopes"])
    assert (await client.read_grant()).granted == {SCOPE_NRPS}
    with pytest.raises(LtiError) as exc:
        await client.list_line_items(LINEITEMS_URL)
    assert exc.value.kind is ErrorKind.auth
    assert replay.urls("lineitems") == []                      # a doomed request is not sent


@pytest.mark.parametrize("name", ["token_wrong_key", "token_unknown_client"])
async def test_rejected_credentials_are_credentials_not_grade_configuration(moodle, name):
    client, _ = moodle([name])
    with pytest.raises(LtiError) as exc:
        await client.read_grant()
    assert exc.value.kind is ErrorKind.auth
    assert exc.value.info.refusal is TokenRefusal.credentials_rejected
    assert (await client.score_grant()).refusal_for(SCOPE_SCORE) is TokenRefusal.credentials_rejected


# ---- line items -----------------------------------------------------------------------------------
async def test_line_items_unpaged_are_the_recorded_list(moodle):
    client, replay = moodle(READ_TOKEN + ["lineitems_all"])
    items = await client.list_line_items(LINEITEMS_URL)
    assert [(li.id, li.resource_link_id, li.score_maximum) for li in items] == \
        [(o["id"], o["resourceLinkId"], o["scoreMaximum"]) for o in body_of("lineitems_all")]
    assert len(replay.urls("lineitems")) == 1


async def test_line_item_paging_unescapes_amp_and_stops_at_the_last_page(moodle):
    # Page 1's Link targets are `&amp;`-escaped with typographic quotes; followed literally they would hit
    # lineitems_link_taken_literally (the whole list again).
    client, replay = moodle(READ_TOKEN + ["lineitems_limit2_page1", "lineitems_limit2_page2",
                                          "lineitems_limit2_page3", "lineitems_link_taken_literally"], page_size=2)
    items = await client.list_line_items(LINEITEMS_URL)
    assert [li.id for li in items] == [o["id"] for o in body_of("lineitems_all")]
    assert not any("amp;" in u for u in replay.urls())
    assert len(replay.urls("lineitems")) == 2                  # page 2 has no rel=next


async def test_line_items_filtered_by_resource_link(moodle):
    client, replay = moodle(READ_TOKEN + ["lineitems_filter_both"])
    items = await client.list_line_items(LINEITEMS_URL, resource_link_id=QUIZ_RLID)
    assert [li.id for li in items] == [QUIZ_ITEM]


@pytest.mark.parametrize("name", ["lineitems_deleted_course", "memberships_deleted_course"])
async def test_deleted_course_is_course_unreachable_with_moodles_reason(moodle, name):
    client, _ = moodle(READ_TOKEN + [name])
    url = load(name)["request"]["url"]
    with pytest.raises(LtiError) as exc:
        if "memberships" in name:
            await client.list_members(url)
        else:
            await client.list_line_items(url)
    assert exc.value.kind is ErrorKind.course_unreachable and exc.value.status == 404
    assert reason_of(name) in exc.value.message               # "Not Found: Course N doesn't exist"


# ---- results --------------------------------------------------------------------------------------
async def test_results_never_carry_limit_even_with_a_page_size(moodle):
    # results_quiz_limit2 is Moodle's crash page (404, HTML): served if the client sent `limit`.
    client, replay = moodle(READ_TOKEN + ["results_quiz", "results_quiz_limit2"], page_size=2)
    results = await client.list_results(QUIZ_ITEM)
    assert {(r.user_id, r.result_score, r.result_maximum) for r in results} == \
        {(o["userId"], o["resultScore"], o["resultMaximum"]) for o in body_of("results_quiz")}
    assert all("limit" not in u for u in replay.urls("results"))
    assert all(r.timestamp is not None and r.timestamp.tzinfo for r in results)


async def test_one_crashing_results_url_leaves_only_that_item_unverified(moodle):
    """Moodle's 404 HTML crash page on the quiz's results; the other items' results are read."""
    crash = load("results_quiz_limit2")
    crash["request"]["url"] = load("results_quiz")["request"]["url"]     # the same page, for this URL
    names = READ_TOKEN + ["lineitems_all", "memberships_all", "results_essay_after_rescale", "results_locked_item"]
    client, replay = moodle(names)
    replay.recs.append(crash)
    snap = await extract_course(client, LINEITEMS_URL, MEMBERSHIPS_URL)
    assert set(snap.item_errors) == {QUIZ_ITEM} and snap.item_errors[QUIZ_ITEM].status == 404
    assert set(snap.results) == {ESSAY_ITEM, LAB_ITEM}


# ---- memberships ----------------------------------------------------------------------------------
async def test_memberships_bare_roles_suspended_absent_non_editing_teacher_a_learner(moodle):
    client, _ = moodle(READ_TOKEN + ["memberships_all"])
    members = {m.user_id: m for m in await client.list_members(MEMBERSHIPS_URL)}
    assert set(members) == {m["user_id"] for m in body_of("memberships_all")["members"]}
    assert uid("s10") not in members and uid("s9") not in members         # suspended, not enrolled
    assert members[uid("ta1")].is_learner                                 # non-editing teacher (§10)
    assert not members[uid("t1")].is_learner
    assert all(m.is_active for m in members.values())


async def test_memberships_paging_follows_ascii_next_to_the_same_roster(moodle):
    client, replay = moodle(READ_TOKEN + ["memberships_limit4_page1", "memberships_limit4_page2",
                                          "memberships_limit4_page3"], page_size=4)
    members = await client.list_members(MEMBERSHIPS_URL)
    assert sorted(m.user_id for m in members) == sorted(m["user_id"] for m in body_of("memberships_all")["members"])
    assert len(replay.urls("memberships")) == 3


# ---- score POSTs ----------------------------------------------------------------------------------
SCORES = SCORE_TOKEN + ["score_accepted", "score_user_not_enrolled", "score_non_editing_teacher",
                        "score_suspended_learner", "score_stale_timestamp", "score_locked_item",
                        "score_over_teacher_override", "score_rescaled"]


@pytest.mark.parametrize("user,item,name", [("s2", QUIZ_ITEM, "score_accepted"),
                                            ("s10", QUIZ_ITEM, "score_suspended_learner"),
                                            ("s4", QUIZ_ITEM, "score_over_teacher_override"),
                                            ("s2", ESSAY_ITEM, "score_rescaled")],
                         ids=["learner", "suspended_learner", "over_teacher_override", "rescaled"])
async def test_accepted_scores_return_no_body(moodle, user, item, name):
    client, replay = moodle(SCORES)
    assert await client.post_score(item, score(uid(user))) is None
    assert replay.requests[-1].url.path.endswith("/lineitem/scores")      # path + /scores, query kept (§7 #18)
    assert load(name)["response"]["status"] == 200


@pytest.mark.parametrize("user,item,name,kind", [
    ("s9", QUIZ_ITEM, "score_user_not_enrolled", ErrorKind.not_learner),
    ("ta1", QUIZ_ITEM, "score_non_editing_teacher", ErrorKind.not_learner),
    ("s1", QUIZ_ITEM, "score_stale_timestamp", ErrorKind.stale_timestamp),
    ("s2", LAB_ITEM, "score_locked_item", ErrorKind.other),
], ids=["not_enrolled", "non_editing_teacher", "stale_timestamp", "locked_item"])
async def test_refusals_classify_by_status_and_keep_the_reason_phrase(moodle, user, item, name, kind):
    client, replay = moodle(SCORES)
    with pytest.raises(LtiError) as exc:
        await client.post_score(item, score(uid(user)))
    assert exc.value.kind is kind and exc.value.status == load(name)["response"]["status"]
    assert load(name)["response"]["body"] == "[]"
    phrase = reason_of(name)
    if phrase != "Internal Server Error":
        assert phrase in str(exc.value)                  # the passback log's `response` gets the phrase
    assert len(replay.urls("scores")) == 1               # a refusal is never re-sent


async def test_override_is_kept_and_rescale_is_read_back_normalised(moodle):
    """After the POSTs: s4 still shows the teacher's 60 (the 95 was accepted, not shown); 18/20 reads 9/10."""
    client, _ = moodle(READ_TOKEN + ["results_quiz_after_posts", "results_essay_after_rescale"])
    quiz = {r.user_id: r for r in await client.list_results(QUIZ_ITEM)}
    sent = load("score_over_teacher_override")["request"]["json"]
    assert quiz[uid("s4")].result_score != sent["scoreGiven"]
    before = {o["userId"]: o["resultScore"] for o in body_of("results_quiz")}
    assert quiz[uid("s4")].result_score == before[uid("s4")]            # the override, untouched
    essay = {r.user_id: r for r in await client.list_results(ESSAY_ITEM)}
    rescaled = load("score_rescaled")["request"]["json"]
    r = essay[uid("s2")]
    assert r.result_score / r.result_maximum == pytest.approx(rescaled["scoreGiven"] / rescaled["scoreMaximum"])
    assert r.result_maximum != rescaled["scoreMaximum"]


async def test_result_timestamp_is_the_tools_own_timestamp_in_whole_seconds(moodle):
    """Moodle's result timestamp is the tool's own timestamp, in whole seconds (§10)."""
    client, _ = moodle(READ_TOKEN + ["results_quiz_after_posts"])
    quiz = {r.user_id: r for r in await client.list_results(QUIZ_ITEM)}
    sent = datetime.fromisoformat(load("score_accepted")["request"]["json"]["timestamp"])
    assert abs(quiz[uid("s2")].timestamp - sent) < timedelta(seconds=1)
    assert quiz[uid("s2")].timestamp.microsecond == 0
