"""The diagnosis rules (docs/diagnosis-rules.md) on hand-built data: one test per category and the
precedence between them. Pure: no network, no database, no Prefect."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gradesync.diagnosis.course import diagnose_course
from gradesync.diagnosis.inputs import (Completion, CourseInfo, CourseRecords, CourseSnapshot, LinkInfo,
                                        Passback, PlatformRecords, ScoreGrant)
from lti_client.types import ErrorKind, LineItem, LtiErrorInfo, Member, Result

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
    d = diagnose_course(rec, course, snap, grant)
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
    assert categories(rec, course, snap)[0] == [("item_not_active", None)]
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


def test_timestamp_without_any_accepted_send_is_a_score_mismatch_not_a_conflict():
    # design.md: "carries a later timestamp" — later than the tool's last accepted send; with none on
    # record there is nothing to be later than, and no scorer: no sign of a person's edit.
    result = Result("r", "li-1", "u1", 5.0, 10.0, timestamp=T0)
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], {"li-1": [result]}, [], vendor="moodle")
    assert categories(rec, course, snap)[0] == [("score_mismatch", "u1")]
    scored = Result("r", "li-1", "u1", 5.0, 10.0, scoring_user_id="teacher-7")
    rec, course, snap = world([comp("acc-u1")], [learner("u1")], {"li-1": [scored]}, [], vendor="moodle")
    assert categories(rec, course, snap)[0] == [("manual_grade_conflict", "u1")]
