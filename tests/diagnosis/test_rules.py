"""The diagnosis rules (docs/diagnosis-rules.md) on hand-built data: one test per category and the
precedence between them. Pure: no network, no database, no Prefect."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gradesync.diagnosis.course import diagnose_course
from gradesync.diagnosis.inputs import (Completion, CourseInfo, CourseRecords, CourseSnapshot, LinkInfo,
                                        Passback, PlatformRecords, ScoreGrant)
from lti_client.types import ErrorKind, LineItem, LtiErrorInfo, Member, Result
from tests.suite_gaps import suite_gaps

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
T0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
COURSE = CourseInfo("canvas-main", "C1", "Course 1", T0 - timedelta(days=30), T0 + timedelta(days=60))
GRANTED = ScoreGrant(True)


def comp(account, activity="A1", score=8.0, maximum=10.0, when=T0, ctx="C1", platform="canvas-main"):
    return Completion(account, activity, score, maximum, when, platform if ctx else None, ctx, "RL1" if ctx else None)


def item(rl="RL1", id_="li-1", maximum=10.0):
    return LineItem(id=id_, label="Quiz", score_maximum=maximum, resource_link_id=rl)


def world(completions, members, results=None, passbacks=(), links=None, items=None, vendor="canvas",
          accounts=None, identities=None):
    accounts = accounts or [("acc-u1", "u1@example.edu"), ("acc-u2", "u2@example.edu"), ("acc-u3", "u3@example.edu")]
    identities = identities or [("acc-u1", "u1"), ("acc-u2", "u2"), ("acc-u3", "u3")]
    rec = PlatformRecords.build("canvas-main", vendor, accounts, identities, completions)
    course = CourseRecords(COURSE, links or [LinkInfo("RL1", "A1", True)], list(passbacks))
    items = items if items is not None else [item()]
    snap = CourseSnapshot(line_items=items, results=results or {i.id: [] for i in items}, members=members)
    return rec, course, snap


def categories(rec, course, snap, grant=GRANTED):
    d = diagnose_course(rec, course, snap, grant, suite_gaps(rec, course, snap))
    return sorted((f.category, f.lms_user_id) for f in d.findings), d


def learner(uid, roles=(LEARNER,), status="Active"):
    return Member(uid, tuple(roles), status)


def test_in_sync_rescaled_and_zero_scores_are_not_findings():
    results = {"li-1": [Result("r1", "li-1", "u1", 40.0, 50.0), Result("r2", "li-1", "u2", 0.0, 50.0)]}
    rec, course, snap = world([comp("acc-u1"), comp("acc-u2", score=0.0)], [learner("u1"), learner("u2")], results)
    cats, d = categories(rec, course, snap)
    assert cats == [] and d.expected_count == 2 and d.present_count == 2


def test_missing_in_lms_and_learner_without_work_is_not_a_gap():
    rec, course, snap = world([comp("acc-u1")], [learner("u1"), learner("u2")])
    assert categories(rec, course, snap)[0] == [("missing_in_lms", "u1")]


def test_not_learner_for_ta_inactive_and_absent_user():
    comps = [comp("acc-u1"), comp("acc-u2"), comp("acc-u3")]
    rec, course, snap = world(comps, [learner("u1", roles=(TA,)), learner("u2", status="Inactive")])
    assert categories(rec, course, snap)[0] == [("not_learner", "u1"), ("not_learner", "u2"), ("not_learner", "u3")]


def test_duplicate_account_same_email_in_other_case():
    accounts = [("acc-u1", "Pat@Example.edu"), ("manual-9", "pat@example.EDU")]
    rec, course, snap = world([comp("manual-9", ctx=None)], [learner("u1")], accounts=accounts,
                              identities=[("acc-u1", "u1")])
    cats, d = categories(rec, course, snap)
    assert cats == [("duplicate_account", "u1")]
    assert d.findings[0].account_id == "manual-9" and d.findings[0].evidence["linked_account"] == "acc-u1"


def test_launched_outside_course_no_context_or_other_course():
    rec, course, snap = world([comp("acc-u1", ctx=None), comp("acc-u2", ctx="C9")], [learner("u1"), learner("u2")])
    assert categories(rec, course, snap)[0] == [("launched_outside_course", "u1"), ("launched_outside_course", "u2")]


def test_outside_course_dates_and_line_item_window():
    late = comp("acc-u1", when=COURSE.ends_at + timedelta(days=1))
    windowed = LineItem("li-1", "Quiz", 10.0, "RL1", end_date_time=T0 - timedelta(days=1))
    rec, course, snap = world([late], [learner("u1")])
    assert categories(rec, course, snap)[0] == [("outside_course_dates", "u1")]
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], items=[windowed])
    assert categories(rec, course, snap)[0] == [("outside_course_dates", "u1")]


def test_manual_grade_conflict_signs():
    ok = Passback("u1", "RL1", 8.0, 10.0, T0, 200, "{}")
    # accepted 8/10, LMS shows 5/10: a person changed it
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], {"li-1": [Result("r", "li-1", "u1", 5.0, 10.0)]}, [ok])
    assert categories(rec, course, snap)[0] == [("manual_grade_conflict", "u1")]
    # Moodle-style later timestamp (whole seconds), scores equal to the last sent but not to the completion
    old = Passback("u1", "RL1", 5.0, 10.0, T0, 200, "")
    later = Result("r", "li-1", "u1", 5.0, 10.0, timestamp=T0 + timedelta(seconds=5))
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], {"li-1": [later]}, [old], vendor="moodle")
    assert categories(rec, course, snap)[0] == [("manual_grade_conflict", "u1")]
    # a resend refused as stale, with no result at all
    stale = Passback("u1", "RL1", 8.0, 10.0, T0, 400,
                     '{"errors":{"type":"bad_request","message":"Provided timestamp of 2026-03-01T12:00:00Z before last updated timestamp of 2026-03-02T00:00:00.000Z"}}')
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], None, [stale])
    assert categories(rec, course, snap)[0] == [("manual_grade_conflict", "u1")]


def test_score_mismatch_when_lms_shows_an_older_tool_score():
    sent = Passback("u1", "RL1", 5.0, 10.0, T0 - timedelta(days=2), 200, "")
    result = Result("r", "li-1", "u1", 5.0, 10.0, timestamp=T0 - timedelta(days=2))
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], {"li-1": [result]}, [sent], vendor="moodle")
    assert categories(rec, course, snap)[0] == [("score_mismatch", "u1")]


def test_link_not_graded_suppresses_learners_and_ungraded_links_are_ignored():
    links = [LinkInfo("RL1", "A1", True), LinkInfo("RL2", "A2", False)]
    rec, course, snap = world([comp("acc-u1"), comp("acc-u1", activity="A2")], [learner("u1")], links=links, items=[])
    assert categories(rec, course, snap)[0] == [("link_not_graded", None)]


def test_item_not_active_from_refusal_and_from_heuristic():
    refusal = Passback("u1", "RL1", 8.0, 10.0, T0, 422,
                       '{"errors":[{"field":"grade","message":"cannot be changed at this time: This assignment is still unpublished","error_code":null}]}')
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], None, [refusal])
    cats, d = categories(rec, course, snap)
    assert cats == [("item_not_active", None)]
    # the item's resyncable gaps ride on its finding, for the per-run probe (issue 10 §3)
    assert [g["lms_user_id"] for g in d.findings[0].evidence["blocked_gaps"]] == ["u1"]
    # heuristic: 3 expected, none present, another item has results
    links = [LinkInfo("RL1", "A1", True), LinkInfo("RL2", "A2", True)]
    items = [item(), item("RL2", "li-2")]
    comps = [comp(a) for a in ("acc-u1", "acc-u2", "acc-u3")] + [comp("acc-u1", activity="A2")]
    results = {"li-1": [], "li-2": [Result("r", "li-2", "u1", 8.0, 10.0)]}
    rec, course, snap = world(comps, [learner("u1"), learner("u2"), learner("u3")], results, links=links, items=items)
    assert categories(rec, course, snap)[0] == [("item_not_active", None)]


def test_course_level_grades_not_accepted_and_unreachable_and_faults():
    rec, course, snap = world([comp("acc-u1")], [learner("u1")])
    cats, _ = categories(rec, course, snap, ScoreGrant(False, "invalid_scope"))
    assert cats == [("grades_not_accepted", None)]
    gone = CourseSnapshot(error=LtiErrorInfo(ErrorKind.course_unreachable, 404, None, "not found", "https://x/y"))
    cats, d = categories(rec, course, gone)
    assert cats == [("course_unreachable", None)] and d.status.status == "unverified"
    flaky = CourseSnapshot(error=LtiErrorInfo(ErrorKind.transient, 503, None, "unavailable", None))
    cats, d = categories(rec, course, flaky)
    assert cats == [] and d.status.status == "unverified"


@pytest.mark.parametrize("first,second", [("not_learner", "launched_outside_course"),
                                          ("duplicate_account", "launched_outside_course")])
def test_precedence_first_category_wins(first, second):
    if first == "not_learner":
        rec, course, snap = world([comp("acc-u1", ctx=None)], [learner("u1", roles=(TA,))])
        # TA is not a roster learner: expected only through (b), which needs this context → nothing
        assert categories(rec, course, snap)[0] == []
        rec, course, snap = world([comp("acc-u1", when=COURSE.ends_at + timedelta(days=3))], [learner("u1", status="Inactive")])
        assert categories(rec, course, snap)[0] == [("not_learner", "u1")]
    else:
        accounts = [("acc-u1", "a@x.edu"), ("m-1", "A@x.edu")]
        rec, course, snap = world([comp("m-1", ctx=None)], [learner("u1")], accounts=accounts, identities=[("acc-u1", "u1")])
        assert categories(rec, course, snap)[0] == [("duplicate_account", "u1")]


def test_lms_value_without_an_accepted_send_is_a_manual_grade_conflict_never_a_mismatch():
    # issue 10: score_mismatch needs positive evidence the LMS value came from the tool; with no passback
    # log (or none for the cell) the value may be a teacher's, so it is never resent without approval.
    result = Result("r", "li-1", "u1", 5.0, 10.0, timestamp=T0)
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], {"li-1": [result]}, [], vendor="moodle")
    cats, d = categories(rec, course, snap)
    assert cats == [("manual_grade_conflict", "u1")] and "no passback log" in d.findings[0].evidence["why"]
    scored = Result("r", "li-1", "u1", 5.0, 10.0, scoring_user_id="teacher-7")
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], {"li-1": [scored]}, [], vendor="moodle")
    assert categories(rec, course, snap)[0] == [("manual_grade_conflict", "u1")]
    # a refused send only is not an accepted one
    refused = Passback("u1", "RL1", 5.0, 10.0, T0, 503, "")
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], {"li-1": [Result("r", "li-1", "u1", 5.0, 10.0)]},
                              [refused])
    assert categories(rec, course, snap)[0] == [("manual_grade_conflict", "u1")]


def test_lms_value_equal_to_an_older_send_but_not_the_latest_accepted_one_is_a_person():
    # The tool sent 5 then 7 (both accepted); the LMS shows 5 again: only a person (or the platform) can
    # have put it back after the 7 was accepted.
    sends = [Passback("u1", "RL1", 5.0, 10.0, T0 - timedelta(days=3), 200, ""),
             Passback("u1", "RL1", 7.0, 10.0, T0 - timedelta(days=2), 200, "")]
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], {"li-1": [Result("r", "li-1", "u1", 5.0, 10.0)]}, sends)
    assert categories(rec, course, snap)[0] == [("manual_grade_conflict", "u1")]
    # the LMS shows the latest accepted send (7), the learner's retake scored 8: the tool's own old score
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], {"li-1": [Result("r", "li-1", "u1", 7.0, 10.0)]}, sends)
    cats, d = categories(rec, course, snap)
    assert cats == [("score_mismatch", "u1")] and d.findings[0].evidence["lms_value_sent_by_tool_at"]


def test_teacher_grade_equal_to_the_tool_score_is_not_a_gap():
    result = Result("r", "li-1", "u1", 80.0, 100.0, scoring_user_id="teacher-7")
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], {"li-1": [result]})
    assert categories(rec, course, snap)[0] == []


def test_retried_post_503_then_409_with_the_same_timestamp_is_the_tool_colliding_with_itself():
    # The seed's story on Moodle: the first POST answered 503 but landed; the retry with the same
    # timestamp was refused 409 (whole-second `>=`, §4.3). Both rows count; no person edited anything.
    first = Passback("u1", "RL1", 8.0, 10.0, T0, 503, "")
    retry = Passback("u1", "RL1", 8.0, 10.0, T0, 409, "Refusing score with an earlier timestamp for item 7 and user 3")
    landed = Result("r", "li-1", "u1", 8.0, 10.0, timestamp=T0)
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], {"li-1": [landed]}, [first, retry], vendor="moodle")
    assert categories(rec, course, snap)[0] == []           # in sync: the 503 had landed
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], None, [first, retry], vendor="moodle")
    assert categories(rec, course, snap)[0] == [("missing_in_lms", "u1")]
    # a 409 with no own send at or after its second is a person's later grade
    alone = Passback("u1", "RL1", 8.0, 10.0, T0, 409, "Refusing score with an earlier timestamp for item 7 and user 3")
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], None, [alone], vendor="moodle")
    assert categories(rec, course, snap)[0] == [("manual_grade_conflict", "u1")]


def test_passback_without_status_is_kept_and_says_nothing_about_the_item():
    timed_out = Passback("u1", "RL1", 8.0, 10.0, T0, None, "")
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], None, [timed_out])
    cats, d = categories(rec, course, snap)
    ev = d.findings[0].evidence
    assert cats == [("missing_in_lms", "u1")] and (ev["passbacks"], ev["last_status"]) == (1, None)


def test_line_item_of_a_link_is_the_one_the_tool_posts_to():
    # No item bound to the link: the tool-created item its passbacks targeted (resource_link_id empty).
    created = LineItem("li-9", "Tool column", 10.0, None)
    pb = Passback("u1", None, 8.0, 10.0, T0, 200, "", line_item_id="li-9")
    pb_link = Passback("u2", "RL1", 8.0, 10.0, T0, 200, "", line_item_id="li-9")
    rec, course, snap = world([comp("acc-u1"), comp("acc-u2")], [learner("u1"), learner("u2")],
                              {"li-9": [Result("r", "li-9", "u2", 8.0, 10.0)]}, [pb, pb_link], items=[created])
    cats, d = categories(rec, course, snap)
    assert cats == [("missing_in_lms", "u1")] and d.findings[0].line_item_id == "li-9"
    # Two items bound to the link: the one posted to, never the first listed.
    two = [item(id_="li-a"), item(id_="li-b")]
    sent = Passback("u1", "RL1", 8.0, 10.0, T0, 200, "", line_item_id="li-b")
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], {"li-a": [], "li-b": [Result("r", "li-b", "u1", 8.0, 10.0)]},
                              [sent], items=two)
    assert categories(rec, course, snap)[0] == []
    # ... and with nothing to tell them apart the link is unverified, not a gap.
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], None, [], items=two)
    cats, d = categories(rec, course, snap)
    assert cats == [] and "RL1" in d.unverified_items and d.status.status == "audited" and "RL1" in d.status.reason


def test_results_unreadable_for_one_item_make_only_that_link_unverified():
    links = [LinkInfo("RL1", "A1", True), LinkInfo("RL2", "A2", True)]
    items = [item(), item("RL2", "li-2")]
    rec, course, snap = world([comp("acc-u1"), comp("acc-u1", activity="A2")], [learner("u1")], None,
                              links=links, items=items)
    snap.item_errors["li-1"] = LtiErrorInfo(ErrorKind.course_unreachable, 404, None, "HTML error page", "https://m/x")
    cats, d = categories(rec, course, snap)
    assert cats == [("missing_in_lms", "u1")] and d.findings[0].resource_link_id == "RL2"
    assert d.status.status == "audited" and set(d.unverified_items) == {"RL1"}
    assert all(g.line_item_id != "li-1" for g in d.expected)


def test_completion_launched_from_this_course_wins_over_a_later_one_elsewhere():
    # A retake: the learner did A1 in C0 (spring, in sync there) and in C1 (now). C1 counts its own.
    spring = comp("acc-u1", score=4.0, when=T0 + timedelta(days=5), ctx="C0")
    now = comp("acc-u1", score=9.0, when=T0, ctx="C1")
    rec, course, snap = world([spring, now], [learner("u1")], {"li-1": [Result("r", "li-1", "u1", 9.0, 10.0)]})
    assert categories(rec, course, snap)[0] == []
    rec, course, snap = world([spring, now], [learner("u1")])
    cats, d = categories(rec, course, snap)
    assert cats == [("missing_in_lms", "u1")] and d.findings[0].tool_score == 9.0


def test_roster_email_finds_the_work_of_a_learner_who_never_launched_the_tool():
    # u7 is on the roster (NRPS email) but has no identity: their work sits in a manual account.
    accounts = [("acc-u1", "u1@example.edu"), ("manual-7", "Kim@Example.edu")]
    kim = Member("u7", (LEARNER,), "Active", email="kim@example.edu")
    rec, course, snap = world([comp("manual-7", ctx=None)], [learner("u1"), kim], accounts=accounts,
                              identities=[("acc-u1", "u1")])
    cats, d = categories(rec, course, snap)
    assert cats == [("launched_outside_course", "u7")] and d.findings[0].account_id == "manual-7"
    # a linked account with another email + the roster email matching the manual account → duplicate
    accounts = [("acc-u7", "k.lee@school.edu"), ("manual-7", "kim@example.edu")]
    rec, course, snap = world([comp("manual-7", ctx=None)], [kim], accounts=accounts, identities=[("acc-u7", "u7")])
    assert categories(rec, course, snap)[0] == [("duplicate_account", "u7")]
    # a roster learner with no identity who did nothing is not a gap
    rec, course, snap = world([], [kim], accounts=accounts, identities=[("acc-u1", "u1")])
    assert categories(rec, course, snap)[0] == []


def test_gradebook_refusal_makes_a_roster_learner_not_learner():
    # Moodle 5.1: NRPS lists a non-editing teacher as Learner; the gradebook refuses their score with
    # 400 and the text only in the reason phrase (§10).
    refused = Passback("u1", "RL1", 8.0, 10.0, T0, 400, "Incorrect score received")
    rec, course, snap = world([comp("acc-u1")], [learner("u1", roles=("Learner",))], None, [refused], vendor="moodle")
    cats, d = categories(rec, course, snap)
    assert cats == [("not_learner", "u1")] and d.findings[0].evidence["gradebook_refused_at"]


def test_a_supersede_the_platform_ignored_is_said_in_the_conflict():
    tried = Passback("u1", "RL1", 8.0, 10.0, T0, 200, "", resync_outcome="failed:accepted_not_shown")
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], {"li-1": [Result("r", "li-1", "u1", 6.0, 10.0)]}, [tried])
    cats, d = categories(rec, course, snap)
    assert cats == [("manual_grade_conflict", "u1")] and d.findings[0].evidence["supersede_tried"]["sent"] == "8/10"


def test_rejected_credentials_leave_courses_unverified_without_findings():
    rec, course, snap = world([comp("acc-u1")], [learner("u1")])
    for err in (LtiErrorInfo(ErrorKind.auth, 401, "invalid_client", "unknown client", None),
                LtiErrorInfo(ErrorKind.auth, 400, "invalid_grant", "Error validating assertion", None),
                LtiErrorInfo(ErrorKind.auth, 400, "invalid_request", "JWS signature invalid.", None)):
        grant = ScoreGrant.from_error(err)
        cats, d = categories(rec, course, snap, grant)
        assert cats == [] and d.status.status == "unverified" and d.status.reason.startswith("credentials rejected")
    scope = ScoreGrant.from_error(LtiErrorInfo(ErrorKind.auth, 400, "invalid_scope", "not granted", None))
    assert categories(rec, course, snap, scope)[0] == [("grades_not_accepted", None)]
    down = ScoreGrant.from_error(LtiErrorInfo(ErrorKind.transient, 503, None, "unavailable", None))
    cats, d = categories(rec, course, snap, down)
    assert cats == [] and d.status.status == "unverified" and not down.credentials_rejected
