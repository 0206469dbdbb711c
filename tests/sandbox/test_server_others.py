"""D2L, Blackboard and spec profiles over real HTTP (lti-platform-behavior.md §2.5, §3.4, §4.1, §4.4–4.5, §6.2)."""
from __future__ import annotations

import concurrent.futures as cf
import re
from datetime import timedelta

import httpx

from sandbox_helpers import T0, Tool, make_state
from sandbox_lms.server import start_sandbox


def next_link(r: httpx.Response) -> str | None:
    m = re.search(r'<([^>]+)>; rel="next"', r.headers.get("link", ""))
    return m.group(1) if m else None


def cell(sandbox, profile, user, item=0):
    return sandbox.state.registrations[profile].courses["C1"].line_items[item].results.get(user)


# ---------------- D2L ----------------

def test_d2l_line_items_200_per_page_with_link_next(tool_key):
    state = make_state(tool_key[1], profiles=("d2l",), n_extra_items=248)        # 250 items
    with start_sandbox(state) as sb:
        t = Tool(sb, state.registrations["d2l"], tool_key[0])
        token = t.token()
        r = t.get(t.url("line_items"), token)
        assert len(r.json()) == 200 and next_link(r)
        r2 = t.get(next_link(r), token)
        assert len(r2.json()) == 50 and next_link(r2) is None
        assert len(t.get(t.url("line_items") + "?limit=500", token).json()) == 200


def test_d2l_user_errors_403_404_422(tool):
    t = tool("d2l")
    sandbox_reg = t.reg
    sandbox_reg.courses["C2"].members.append(type(sandbox_reg.courses["C1"].members[0])("elsewhere", []))
    r = t.post_score("elsewhere", 5)
    assert r.status_code == 403 and "not enrolled in the org unit" in r.json()["detail"]
    r = t.post_score("ghost", 5)
    assert r.status_code == 404 and "does not exist" in r.json()["detail"]
    r = t.post_score("t1", 5)
    assert r.status_code == 422


def test_d2l_caps_scores_at_maximum(sandbox, tool):
    t = tool("d2l")
    assert t.post_score("s2", 12, 10).status_code == 200
    assert cell(sandbox, "d2l", "s2").result_score == 10.0


def test_d2l_throttle_is_429_with_retry_after(sandbox, tool):
    t = tool("d2l")
    token = t.token()
    sandbox.control.set_faults("d2l", max_in_flight=1, latency_ms=300)
    with cf.ThreadPoolExecutor(3) as pool:
        rs = list(pool.map(lambda _: httpx.get(t.url("line_items"), headers={"Authorization": f"Bearer {token}"},
                                               timeout=5), range(3)))
    throttled = [r for r in rs if r.status_code == 429]
    assert throttled and throttled[0].headers["retry-after"] == "1"


# ---------------- Blackboard ----------------

def test_blackboard_user_not_in_course_400(tool):
    for user in ("nobody", "t1"):
        r = tool("blackboard").post_score(user, 5)
        assert r.status_code == 400 and r.json()["message"].startswith("User could not be found:")


def test_blackboard_user_id_filter_drops_comment(sandbox, tool):
    t = tool("blackboard")
    assert t.post_score("s2", 7, extra={"comment": "well done"}).status_code == 200
    everyone = {x["userId"]: x for x in t.get(t.url("results")).json()}
    assert everyone["s2"]["comment"] == "well done"
    one = t.get(t.url("results"), params={"user_id": "s2"}).json()
    assert len(one) == 1 and "comment" not in one[0] and one[0]["resultScore"] == 7.0


def test_blackboard_item_not_available_refuses_scores(sandbox, tool):
    t = tool("blackboard")
    r = t.post_score("s2", 50, 100, item_id=2)                    # item 2 active=False
    assert r.status_code == 403 and "not Available" in r.json()["message"]
    assert cell(sandbox, "blackboard", "s2", item=1) is None
    sandbox.control.set_published("blackboard", "C1", 2, True)
    assert t.post_score("s2", 50, 100, item_id=2).status_code == 200


# ---------------- spec ----------------

def test_spec_stale_score_is_ignored_with_success(sandbox, tool):
    t = tool("spec")
    r = t.post_score("s1", 2, timestamp=T0 - timedelta(seconds=1))
    assert r.status_code == 204
    assert cell(sandbox, "spec", "s1").result_score == 8.0            # not applied
    assert sandbox.runtime.score_log[-1].applied is False
    assert t.post_score("s1", 2, timestamp=T0).status_code == 204      # equal: not "later than" → applied
    assert cell(sandbox, "spec", "s1").result_score == 2.0


def test_spec_requires_zone_and_score_media_type(tool):
    t = tool("spec")
    assert t.post_score("s2", 5, timestamp="2024-03-01T12:00:00.000").status_code == 400
    assert t.post_score("s2", 5, content_type="application/json").status_code == 415
    assert t.post_score("s2", 5, None).status_code == 400           # scoreMaximum MUST accompany scoreGiven


def test_spec_nrps_shows_inactive_hides_deleted_and_pages_with_next(sandbox, tool):
    t = tool("spec")
    sandbox.control.set_member("spec", "C1", "s3", status="Deleted")
    token = t.token()
    members = {m["user_id"]: m["status"] for m in t.get(t.url("memberships"), token).json()["members"]}
    assert members["s4"] == "Inactive" and "s3" not in members
    r = t.get(t.url("memberships") + "?limit=2", token)
    assert len(r.json()["members"]) == 2 and next_link(r)
    seen, url = [], t.url("memberships") + "?limit=2"
    while url:
        r = t.get(url, token)
        seen += [m["user_id"] for m in r.json()["members"]]
        url = next_link(r)
    assert sorted(seen) == sorted(members)


def test_spec_results_show_scoring_user_after_manual_grade(sandbox, tool):
    t = tool("spec")
    sandbox.control.set_manual_grade("spec", "C1", 1, "s2", 6.0, scorer="t1", comment="re-marked")
    res = {x["userId"]: x for x in t.get(t.url("results")).json()}
    assert res["s2"]["scoringUserId"] == "t1" and res["s2"]["resultScore"] == 6.0
    assert res["s2"]["comment"] == "re-marked"
    rec = cell(sandbox, "spec", "s2")
    assert rec.by_tool is False and rec.tool_posted is False


def test_spec_non_fully_graded_clears_score(sandbox, tool):
    t = tool("spec")
    assert t.post_score("s1", 5, grading="Pending").status_code == 204
    assert cell(sandbox, "spec", "s1").result_score is None
    assert t.get(t.url("results")).json() == []                    # empty results skipped
