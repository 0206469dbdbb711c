"""Moodle profile over real HTTP (lti-platform-behavior.md §1.1, §2.3, §3.3, §4.3, §5.3)."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from sandbox_helpers import T0, Tool, make_state
from sandbox_lms.server import start_sandbox
from sandbox_lms.state import INSTRUCTOR

LI_ACCEPT = "application/vnd.ims.lis.v2.lineitemcontainer+json"
RES_ACCEPT = "application/vnd.ims.lis.v2.resultcontainer+json"
CURLY = re.compile(r"<([^>]+)>; rel=\u201c(\w+)\u201d")


@pytest.fixture
def moodle(tool):
    return tool("moodle")


def cell(sandbox, user="s1", item=0):
    return sandbox.state.registrations["moodle"].courses["C1"].line_items[item].results.get(user)


def test_curly_quote_link_header_paging_with_limit_and_from(tool_key):
    state = make_state(tool_key[1], profiles=("moodle",), n_extra_items=3)      # 5 items
    with start_sandbox(state) as sb:
        t = Tool(sb, state.registrations["moodle"], tool_key[0])
        token = t.token()
        assert "link" not in t.get(t.url("line_items"), token, accept=LI_ACCEPT).headers   # no limit → all, no Link
        url, seen, pages = t.url("line_items") + "&limit=2", [], 0
        while url:
            r = t.get(url, token, accept=LI_ACCEPT)
            assert r.status_code == 200
            raw = r.headers["link"]
            assert '"next"' not in raw and 'rel="' not in raw                   # not ASCII quotes
            assert "&amp;limit=2" in raw                                         # HTML-escaped targets (§10)
            rels = {rel: u.replace("&amp;", "&") for u, rel in CURLY.findall(raw)}
            assert {"first", "canonical", "last"} <= set(rels)
            assert all("type_id=7" in u and "limit=2" in u for u in rels.values())
            seen += [li["id"] for li in r.json()]
            url, pages = rels.get("next"), pages + 1
        assert pages == 3 and len(set(seen)) == 5


def test_ids_carry_type_id_and_scores_go_to_the_path(moodle, sandbox):
    items = moodle.get(moodle.url("line_items"), accept=LI_ACCEPT).json()
    item1 = next(li for li in items if li["label"] == "Quiz 1")
    assert item1["id"] == f"{moodle.base}/moodle/mod/lti/services.php/C1/lineitems/1/lineitem?type_id=7"
    assert item1["resourceLinkId"] == item1["ltiLinkId"] == "rl-1"
    essay = next(li for li in items if li["label"] == "Essay")
    assert essay["resourceId"] == ""                                    # '' when unset
    # appending /scores after the query string breaks type_id → refused (§7 #18)
    token = moodle.token()
    r = moodle.http.post(item1["id"] + "/scores", content=b"{}",
                         headers={"Authorization": f"Bearer {token}",
                                  "Content-Type": "application/vnd.ims.lis.v1.score+json"})
    assert r.status_code in (400, 405)                                  # the item route refuses it
    assert sandbox.counters.get("moodle", "scores") == 0
    good = moodle.http.post(moodle.url("scores"), content=b"{}",
                            headers={"Authorization": f"Bearer {token}",
                                     "Content-Type": "application/vnd.ims.lis.v1.score+json"})
    assert good.status_code == 400 and sandbox.counters.get("moodle", "scores") == 1   # reached /scores


def test_resource_link_id_filter_and_lti_link_id_fallback(moodle):
    # Moodle 5.1 reads resource_link_id and falls back to lti_link_id (§10; §2.3 was older Moodle).
    token = moodle.token()
    got = moodle.get(moodle.url("line_items") + "&lti_link_id=rl-2", token, accept=LI_ACCEPT).json()
    assert [li["label"] for li in got] == ["Essay"]
    got = moodle.get(moodle.url("line_items") + "&resource_link_id=rl-2", token, accept=LI_ACCEPT).json()
    assert [li["label"] for li in got] == ["Essay"]


def test_accept_header_is_strict(moodle):
    token = moodle.token()
    assert moodle.get(moodle.url("line_items"), token, accept="*/*").status_code == 400
    assert moodle.get(moodle.url("line_items"), token, accept="").status_code == 200
    assert moodle.get(moodle.url("results"), token, accept="application/json").status_code == 400


def test_results_graded_rows_only_with_second_precision_timestamp(moodle, sandbox):
    sandbox.state.registrations["moodle"].courses["C1"].line_items[0].results["s1"].stored_at = \
        T0 + timedelta(microseconds=654321)
    body = moodle.get(moodle.url("results"), accept=RES_ACCEPT).json()
    assert len(body) == 1
    res = body[0]
    assert res["id"] == f"{moodle.base}/moodle/mod/lti/services.php/C1/lineitems/1/lineitem/results?type_id=7&user_id=s1"
    assert res["timestamp"] == "2024-03-01T12:00:00+00:00"
    assert "scoringUserId" not in res


def test_same_second_score_409_next_second_accepted(moodle, sandbox):
    r = moodle.post_score("s1", 9, timestamp=T0 + timedelta(milliseconds=900))
    assert r.status_code == 409
    assert "Refusing score with an earlier timestamp" in r.reason_phrase and r.content == b"[]"   # §10
    r = moodle.post_score("s1", 9, timestamp=T0 + timedelta(seconds=1))
    assert r.status_code == 200 and r.content == b""
    assert cell(sandbox).result_score == 9.0


def test_teacher_edit_makes_older_tool_timestamps_conflict(moodle, sandbox):
    sandbox.control.set_manual_grade("moodle", "C1", 1, "s1", 4.0)
    r = moodle.post_score("s1", 9, timestamp=sandbox.runtime.now() - timedelta(seconds=30))
    assert r.status_code == 409


def test_teacher_override_stays_although_a_fresh_score_answers_200(moodle, sandbox):
    sandbox.control.set_manual_grade("moodle", "C1", 1, "s1", 4.0, comment="override")
    r = moodle.post_score("s1", 9, timestamp=sandbox.runtime.now() + timedelta(seconds=2))
    assert r.status_code == 200
    res = moodle.get(moodle.url("results"), accept=RES_ACCEPT).json()[0]
    assert res["resultScore"] == 4.0 and res["comment"] == "override"


@pytest.mark.parametrize("user", ["t1", "ta1", "nobody"])
def test_not_gradable_users_get_incorrect_score_received(moodle, user):
    r = moodle.post_score(user, 5)
    # §10: the text is only in the reason phrase; the body is []
    assert r.status_code == 400 and r.reason_phrase.startswith("Incorrect score received") and r.content == b"[]"


def test_suspended_learner_still_gradable_and_role_change_counts(moodle, sandbox):
    assert moodle.post_score("s4", 5).status_code == 200                   # Inactive = suspended enrolment
    sandbox.control.set_member("moodle", "C1", "s2", roles=[INSTRUCTOR])
    assert moodle.post_score("s2", 5).status_code == 400


def test_score_content_type_is_strict_but_its_parameters_are_dropped(moodle):
    # services.php compares the media type without parameters (§10, tests/fixtures/moodle-5.1).
    assert moodle.post_score("s2", 5, content_type="application/json").status_code == 400
    r = moodle.post_score("s2", 5, content_type="application/vnd.ims.lis.v1.score+json; charset=utf-8")
    assert r.status_code == 200


def test_rescaled_and_default_maximum_one(moodle, sandbox):
    assert moodle.post_score("s2", 0.5, 1).status_code == 200
    assert cell(sandbox, "s2").result_score == 5.0
    assert moodle.post_score("s3", 0.25, None).status_code == 200           # scoreMaximum defaults to 1
    assert cell(sandbox, "s3").result_score == 2.5


def test_not_fully_graded_clears_the_grade(moodle, sandbox):
    assert moodle.post_score("s1", 9, grading="Pending", timestamp=T0 + timedelta(seconds=5)).status_code == 200
    assert cell(sandbox) is None
    assert moodle.get(moodle.url("results"), accept=RES_ACCEPT).json() == []
    # with timemodified cleared, an older (but well-formed) timestamp is accepted again
    assert moodle.post_score("s1", 7, timestamp=T0 - timedelta(days=1)).status_code == 200


def test_nrps_active_only_and_short_role_filter(moodle, sandbox):
    token = moodle.token()
    members = moodle.get(moodle.url("memberships"), token).json()["members"]
    assert "s4" not in {m["user_id"] for m in members} and {m["status"] for m in members} == {"Active"}
    learners = moodle.get(moodle.url("memberships"), token, params={"role": "Learner"}).json()["members"]
    assert {m["user_id"] for m in learners} == {"s1", "s2", "s3"}


def test_line_item_post_needs_lineitem_content_type(moodle):
    token = moodle.token()
    body = json.dumps({"label": "Extra", "scoreMaximum": 20})
    h = {"Authorization": f"Bearer {token}"}
    r = moodle.http.post(moodle.url("line_items"), content=body, headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 400
    r = moodle.http.post(moodle.url("line_items"), content=body,
                         headers={**h, "Content-Type": "application/vnd.ims.lis.v2.lineitem+json"})
    assert r.status_code == 201 and r.json()["id"].endswith("/lineitem?type_id=7")
