"""Canvas profile over real HTTP (lti-platform-behavior.md §2.2, §3.2, §4.2, §5.2, §6.1)."""
from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest

from sandbox_helpers import T0, Tool, make_state
from sandbox_lms.server import start_sandbox
from sandbox_lms.state import INSTRUCTOR, LEARNER

ARRAY_UNPUBLISHED = {"errors": [{"field": "grade",
                                 "message": "cannot be changed at this time: This assignment is still unpublished",
                                 "error_code": None}]}


def links(response: httpx.Response) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="([a-z]+)"', response.headers.get("link", ""))}


@pytest.fixture
def big(tool_key):
    """Canvas with 14 line items and 66 members in C1."""
    state = make_state(tool_key[1], profiles=("canvas",), n_extra_items=12, n_extra_learners=60)
    with start_sandbox(state) as running:
        yield running


def test_line_items_paged_10_by_default_with_absolute_link_rels(big, tool_key):

    t = Tool(big, big.state.registrations["canvas"], tool_key[0])
    token = t.token()
    r = t.get(t.url("line_items"), token)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.ims.lis.v2.lineitemcontainer+json"
    assert len(r.json()) == 10
    rels = links(r)
    assert set(rels) == {"current", "next", "first", "last"}
    assert all(u.startswith(big.base_url + "/canvas/api/lti/courses/C1/line_items?") for u in rels.values())
    r2 = t.get(rels["next"], token)
    assert len(r2.json()) == 4 and "next" not in links(r2) and "prev" in links(r2)
    ids = [li["id"] for li in r.json() + r2.json()]
    assert len(set(ids)) == 14
    # unpublished item 2 IS listed (§2.2 Assignment.active)
    assert any(i.endswith("/line_items/2") for i in ids)
    # per_page / limit capped at 50 (assumed max)
    assert len(t.get(t.url("line_items") + "?per_page=100", token).json()) == 14
    assert len(t.get(t.url("line_items") + "?limit=3", token).json()) == 3


def test_nrps_active_only_page_50_status_always_active(big, tool_key):

    t = Tool(big, big.state.registrations["canvas"], tool_key[0])
    token = t.token()
    r = t.get(t.url("memberships"), token)
    assert r.headers["content-type"] == "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
    first = r.json()["members"]
    assert len(first) == 50 and "next" in links(r)
    r2 = t.get(t.url("memberships") + "?limit=200", token)
    assert len(r2.json()["members"]) == 50                       # limit capped at 50
    rest = t.get(links(r)["next"], token).json()["members"]
    everyone = {m["user_id"] for m in first + rest}
    assert "s4" not in everyone and len(everyone) == 65           # Inactive s4 not listed
    assert {m["status"] for m in first + rest} == {"Active"}
    # role filter: full URI works, short name yields an empty list (§5.2)
    learners = t.get(t.url("memberships"), token, params={"role": LEARNER, "limit": 50}).json()["members"]
    assert all(LEARNER in m["roles"] for m in learners)
    assert t.get(t.url("memberships"), token, params={"role": "Learner"}).json()["members"] == []


def test_results_only_tool_posted_without_timestamp_or_scorer(sandbox, tool):
    t = tool("canvas")
    sandbox.control.set_manual_grade("canvas", "C1", 1, "s2", 7.0)     # teacher-only grade: no Lti::Result
    r = t.get(t.url("results"))
    assert r.headers["content-type"] == "application/vnd.ims.lis.v2.resultcontainer+json"
    body = r.json()
    assert [x["userId"] for x in body] == ["s1"]
    assert set(body[0]) == {"id", "scoreOf", "userId", "resultScore", "resultMaximum"}
    # an instructor grade on a tool-scored result updates that result
    sandbox.control.set_manual_grade("canvas", "C1", 1, "s1", 9.5, scorer="t1")
    assert t.get(t.url("results")).json()[0]["resultScore"] == 9.5
    # user_id of a non-student → 200 []
    assert t.get(t.url("results"), params={"user_id": "t1"}).json() == []
    assert [x["userId"] for x in t.get(t.url("results"), params={"user_id": "s1"}).json()] == ["s1"]


def test_score_success_is_200_with_result_url_and_rescaled(sandbox, tool):
    t = tool("canvas")
    r = t.post_score("s2", 50, 100)                # item 1 max 10 → 5.0
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.ims.lis.v1.score+json"
    assert r.json()["resultUrl"].endswith("/canvas/api/lti/courses/C1/line_items/1/results/s2")
    rec = sandbox.state.registrations["canvas"].courses["C1"].line_items[0].results["s2"]
    assert rec.result_score == 5.0 and rec.result_maximum == 10.0 and rec.by_tool
    assert sandbox.runtime.score_log[-1].user_id == "s2"


def test_stale_timestamp_400_but_equal_timestamp_allowed(tool):
    t = tool("canvas")                              # s1 stored by the tool at T0
    r = t.post_score("s1", 9, timestamp=T0 - timedelta(seconds=1))
    assert r.status_code == 400
    assert r.json()["errors"]["type"] == "bad_request"
    assert "before last updated timestamp" in r.json()["errors"]["message"]
    assert t.post_score("s1", 9, timestamp=T0).status_code == 200        # equal: strict > only
    assert t.post_score("s1", 9, timestamp=T0 + timedelta(milliseconds=1)).status_code == 200


def test_manual_grade_moves_stored_time_so_older_resend_is_refused(sandbox, tool):
    t = tool("canvas")
    sandbox.control.set_manual_grade("canvas", "C1", 1, "s1", 3.0)
    r = t.post_score("s1", 8, timestamp=sandbox.runtime.now() - timedelta(seconds=5))
    assert r.status_code == 400 and "before last updated" in r.json()["errors"]["message"]


def test_unpublished_assignment_422_array_body(sandbox, tool):
    t = tool("canvas")
    r = t.post_score("s2", 80, 100, item_id=2)
    assert r.status_code == 422 and r.json() == ARRAY_UNPUBLISHED
    sandbox.control.set_published("canvas", "C1", 2, True)
    assert t.post_score("s2", 80, 100, item_id=2).status_code == 200


@pytest.mark.parametrize("user", ["ta1", "t1", "s4", "nobody"])
def test_non_student_422_object_body(tool, user):
    r = tool("canvas").post_score(user, 5)
    assert r.status_code == 422
    assert r.json() == {"errors": {"type": "unprocessable_entity",
                                   "message": "User not found in course or is not a student"}}


def test_role_change_makes_member_gradable(sandbox, tool):
    t = tool("canvas")
    assert t.post_score("t1", 5).status_code == 422
    sandbox.control.set_member("canvas", "C1", "t1", roles=[LEARNER])
    assert t.post_score("t1", 5).status_code == 200
    sandbox.control.set_member("canvas", "C1", "s2", status="Inactive")
    assert t.post_score("s2", 5).status_code == 422
    assert "s2" not in {m["user_id"] for m in t.get(t.url("memberships")).json()["members"]}
    sandbox.control.set_member("canvas", "C1", "s3", roles=[INSTRUCTOR])
    assert t.post_score("s3", 5).status_code == 422


def test_concluded_course_404_on_every_call(sandbox, tool):
    t = tool("canvas")
    sandbox.control.conclude_course("canvas", "C1")
    token = t.token()
    for what in ("line_items", "line_item", "results", "memberships"):
        assert t.get(t.url(what), token).status_code == 404, what
    assert t.post_score("s2", 5, token=token).status_code == 404
    assert t.get(t.url("line_items", "C2"), token).status_code == 200   # other courses unaffected


def test_tool_removed_401(sandbox, tool):
    t = tool("canvas")
    sandbox.control.set_tool_removed("canvas", "C1")
    r = t.get(t.url("line_items"))
    assert r.status_code == 401
    assert r.json()["errors"]["message"] == "Access Token not linked to a Tool associated with this Context"
    assert t.post_score("s2", 5).status_code == 401


def test_reset_clears_score_unless_preserve_score(sandbox, tool):
    t = tool("canvas")
    cell = lambda: sandbox.state.registrations["canvas"].courses["C1"].line_items[0].results["s1"]
    r = t.post_score("s1", None, None, grading="Pending",
                     extra={"https://canvas.instructure.com/lti/submission": {"preserve_score": True}})
    assert r.status_code == 200 and cell().result_score == 8.0
    assert t.post_score("s1", None, None, grading="Pending").status_code == 200
    assert cell().result_score is None
    # a reset row still exists (tool-posted) and shows without resultScore
    assert [x.get("resultScore") for x in t.get(t.url("results")).json()] == [None]
    # PendingManual with scoreGiven sets the score on Canvas
    assert t.post_score("s1", 6, grading="PendingManual").status_code == 200 and cell().result_score == 6.0


def test_prioritize_non_tool_grade_keeps_existing_score(sandbox, tool):
    t = tool("canvas")
    ext = {"https://canvas.instructure.com/lti/submission": {"prioritize_non_tool_grade": True}}
    assert t.post_score("s1", 2, extra=ext).status_code == 200
    assert sandbox.state.registrations["canvas"].courses["C1"].line_items[0].results["s1"].result_score == 8.0


def test_score_validation_422_and_400(tool):
    t = tool("canvas")
    r = t.post_score("s2", 5, None)
    assert r.status_code == 422 and r.json()["errors"]["message"] == "ScoreMaximum not supplied when ScoreGiven present."
    r = t.post_score("s2", -1, 10)
    assert r.status_code == 422
    r = t.post_score("s2", 5, timestamp="yesterday")
    assert r.status_code == 400 and "not a valid timestamp" in r.json()["errors"]["message"]


def test_deleted_item_404_empty_body_and_hidden_from_list(sandbox, tool):
    t = tool("canvas")
    sandbox.control.delete_line_item("canvas", "C1", 1)
    r = t.get(t.url("line_item"))
    assert r.status_code == 404 and r.content == b""
    assert all(not li["id"].endswith("/line_items/1") for li in t.get(t.url("line_items")).json())


def test_line_item_filters_and_create(tool):
    t = tool("canvas")
    token = t.token()
    assert len(t.get(t.url("line_items"), token, params={"resource_link_id": "rl-1"}).json()) == 1
    assert len(t.get(t.url("line_items"), token, params={"tag": "essay"}).json()) == 1
    assert t.get(t.url("line_items"), token, params={"resource_id": "quiz-1", "tag": "essay"}).json() == []
    r = t.http.post(t.url("line_items"), json={"label": "Bonus", "scoreMaximum": 5, "tag": "bonus"},
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201 and r.headers["content-type"] == "application/vnd.ims.lis.v2.lineitem+json"
    created = r.json()
    assert created["label"] == "Bonus" and created["id"].startswith(t.base + "/canvas/api/lti/courses/C1/line_items/")
    assert t.get(created["id"], token).json() == created
    r = t.http.post(t.url("line_items"), json={"label": "", "scoreMaximum": 5},
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400


def test_throttle_is_403_text_plain_without_retry_after(sandbox, tool):
    import concurrent.futures as cf
    t = tool("canvas")
    token = t.token()
    sandbox.control.set_faults("canvas", max_in_flight=1, latency_ms=300)
    with cf.ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: httpx.get(t.url("line_items"), timeout=5,
                                                      headers={"Authorization": f"Bearer {token}"}), range(4)))
    throttled = [r for r in responses if r.status_code == 403]
    assert len(throttled) >= 2 and any(r.status_code == 200 for r in responses)
    r = throttled[0]
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == "403 Forbidden (Rate Limit Exceeded)"
    assert r.headers["x-rate-limit-remaining"] == "0.0"
    assert "retry-after" not in r.headers and "x-request-cost" not in r.headers
    ok = next(r for r in responses if r.status_code == 200)
    assert "x-request-cost" in ok.headers and "x-rate-limit-remaining" in ok.headers
    assert sandbox.counters.get("canvas", "throttled") == len(throttled)


PRIORITIZE = {"https://canvas.instructure.com/lti/submission": {"prioritize_non_tool_grade": True}}


def _result_of(t, user: str) -> list[dict]:
    return t.get(t.url("results"), params={"user_id": user}).json()


def test_hidden_teacher_grade_is_not_in_results_and_prioritize_keeps_it(sandbox, tool):
    t = tool("canvas")
    cell = lambda: sandbox.state.registrations["canvas"].courses["C1"].line_items[0].results["s2"]
    sandbox.control.plant_hidden_teacher_grade("canvas", "C1", 1, "s2", 7.0)   # item 1: 10 points
    assert _result_of(t, "s2") == []                     # no Lti::Result row (§3.2)
    # The tool sends 16/20 with prioritize_non_tool_grade: Canvas keeps the teacher's 7 and grader,
    # writes the Lti::Result (16 of 20) and serialises it rescaled by the person's grading (result.rb):
    # 16 × 20 / 10 = 32 of 20 — not the 0.8 the tool sent.
    assert t.post_score("s2", 16, 20, extra=PRIORITIZE).status_code == 200
    assert (cell().result_score, cell().by_tool) == (7.0, False)
    [row] = _result_of(t, "s2")
    assert (row["resultScore"], row["resultMaximum"]) == (32.0, 20.0)


def test_without_prioritize_the_tool_grade_replaces_the_hidden_one_and_reads_back_raw(sandbox, tool):
    t = tool("canvas")
    sandbox.control.plant_hidden_teacher_grade("canvas", "C1", 1, "s2", 7.0)
    assert t.post_score("s2", 16, 20).status_code == 200
    rec = sandbox.state.registrations["canvas"].courses["C1"].line_items[0].results["s2"]
    assert (rec.result_score, rec.by_tool) == (8.0, True)           # 16/20 on a 10-point item
    [row] = _result_of(t, "s2")
    assert (row["resultScore"], row["resultMaximum"]) == (16.0, 20.0)   # grader < 0: raw, as sent


def test_teacher_grade_on_a_tool_row_is_copied_and_scaled_to_the_sent_maximum(sandbox, tool):
    t = tool("canvas")
    assert t.post_score("s2", 16, 20).status_code == 200
    sandbox.control.set_manual_grade("canvas", "C1", 1, "s2", 3.0, scorer="t1")
    [row] = _result_of(t, "s2")
    # update_score_for_submission copies 3 (points) into the row, keeping result_maximum 20: 3 × 20 / 10
    assert (row["resultScore"], row["resultMaximum"]) == (6.0, 20.0)


def test_hidden_grade_cannot_be_planted_over_a_tool_scored_cell(sandbox):
    with pytest.raises(ValueError):
        sandbox.control.plant_hidden_teacher_grade("canvas", "C1", 1, "s1", 7.0)   # s1 scored by the tool


def test_every_score_body_is_captured_accepted_or_not(sandbox, tool):
    t = tool("canvas")
    t.post_score("s2", 80, 100, item_id=2)                 # 422 unpublished
    t.post_score("s2", 5, extra=PRIORITIZE)
    bodies = [b.body for b in sandbox.runtime.score_bodies]
    assert [b["userId"] for b in bodies] == ["s2", "s2"]
    assert bodies[1]["https://canvas.instructure.com/lti/submission"]["prioritize_non_tool_grade"] is True


def test_hidden_teacher_grade_can_be_planted_over_the_admin_api(sandbox, tool):
    url = f"{sandbox.base_url}/_sandbox/canvas/courses/C1/line_items/1/hidden_teacher_grade"
    r = httpx.post(url, json={"user_id": "s3", "score": 6.5})
    assert r.status_code == 200 and r.json()["result_score"] == 6.5
    assert _result_of(tool("canvas"), "s3") == []
    assert httpx.post(url, json={"user_id": "s1", "score": 1}).status_code == 400     # tool-scored cell
