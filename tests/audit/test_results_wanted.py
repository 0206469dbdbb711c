"""Which results a course's diagnosis needs (gradesync/diagnosis/wanted.py), and that an item whose
results were deliberately not read is neither a gap, nor unverified, nor silently skipped when grades
are expected there after all. Pure: no network, no database."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from gradesync.diagnosis.course import diagnose_course
from tests.suite_gaps import suite_gaps
from gradesync.diagnosis.inputs import (Completion, CourseInfo, CourseRecords, CourseSnapshot, LinkInfo, Passback,
                                        PlatformRecords, ScoreGrant)
from gradesync.diagnosis.wanted import activities_with_work, rest_needed, results_wanted
from lti_client.types import ErrorKind, LineItem, LtiErrorInfo, Member, Result

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
T0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
COURSE = CourseInfo("canvas-main", "C1", "Course 1", T0 - timedelta(days=30), T0 + timedelta(days=60))
USERS = ("u1", "u2", "u3")


def records(completions, links, passbacks=()):
    rec = PlatformRecords.build("canvas-main", "canvas", [(f"acc-{u}", f"{u}@x.edu") for u in USERS],
                                [(f"acc-{u}", u) for u in USERS], completions)
    return rec, CourseRecords(COURSE, links, list(passbacks))


def comp(user, activity):
    return Completion(f"acc-{user}", activity, 8.0, 10.0, T0, "canvas-main", "C1", None)


def item(n: int, rl: str | None) -> LineItem:
    return LineItem(id=f"li-{n}", label=f"Item {n}", score_maximum=10.0, resource_link_id=rl)


def result(item_id: str, user: str, score: float = 8.0) -> Result:
    return Result(f"r-{item_id}-{user}", item_id, user, score, 10.0)


ROSTER = [Member(u, (LEARNER,), "Active") for u in USERS]


def test_wanted_items_are_graded_links_with_work_and_everything_passbacks_name():
    links = [LinkInfo("RL-done", "A-done", True), LinkInfo("RL-future", "A-future", True),
             LinkInfo("RL-reading", "A-reading", False)]
    done_elsewhere = Completion("acc-u1", "A-done", 8.0, 10.0, T0, None, None, None)   # manual login: counts
    pbs = [Passback("u2", "RL-posted", 8.0, 10.0, T0, 200, line_item_id="li-7"),
           Passback("u2", None, 8.0, 10.0, T0, 200, line_item_id="li-tool-made")]
    rec, course = records([done_elsewhere, comp("u1", "A-reading")], links, pbs)
    wanted = results_wanted(course, activities_with_work(rec))
    assert wanted.resource_link_ids == {"RL-done", "RL-posted"}
    assert wanted.line_item_ids == {"li-7", "li-tool-made"}
    assert wanted(item(1, "RL-done")) and wanted(LineItem("li-tool-made", "Tool", 10.0, None))
    assert not wanted(item(2, "RL-future")) and not wanted(item(3, "RL-reading")) and not wanted(item(4, None))


def test_an_item_not_read_is_not_a_gap_and_not_unverified_but_an_unreadable_one_is():
    links = [LinkInfo("RL1", "A1", True), LinkInfo("RL2", "A2", True)]
    rec, course = records([comp("u1", "A1")], links)
    items = [item(1, "RL1"), item(2, "RL2")]
    skipped = CourseSnapshot(items, {"li-1": [result("li-1", "u1")]}, ROSTER, results_not_read=frozenset({"li-2"}))
    d = diagnose_course(rec, course, skipped, ScoreGrant(True), suite_gaps(rec, course, skipped))
    assert d.findings == [] and d.unverified_items == {} and d.status.reason is None and d.expected_count == 1
    broken = CourseSnapshot(items, {"li-1": [result("li-1", "u1")]}, ROSTER,
                            item_errors={"li-2": LtiErrorInfo(ErrorKind.other, 404, None, "HTML page", None)})
    assert set(diagnose_course(rec, course, broken, ScoreGrant(True), suite_gaps(rec, course, broken)).unverified_items) == {"RL2"}


def test_an_item_not_read_where_grades_are_expected_is_unverified_never_a_gap():
    # The reading plan must never do this; if it ever did, the link says so instead of reporting gaps.
    rec, course = records([comp("u1", "A1")], [LinkInfo("RL1", "A1", True)])
    snap = CourseSnapshot([item(1, "RL1")], {}, ROSTER, results_not_read=frozenset({"li-1"}))
    d = diagnose_course(rec, course, snap, ScoreGrant(True), suite_gaps(rec, course, snap))
    assert d.findings == [] and d.expected_count == 0
    assert d.unverified_items == {"RL1": "results were not read tonight although grades are expected here"}


def test_rest_is_read_only_when_an_item_looks_inactive():
    links = [LinkInfo("RL1", "A1", True), LinkInfo("RL2", "A2", True), LinkInfo("RL3", "A3", True)]
    comps = [comp(u, "A1") for u in USERS] + [comp("u1", "A2")]
    rec, course = records(comps, links)
    items = [item(1, "RL1"), item(2, "RL2"), item(3, "RL3")]
    wanted = results_wanted(course, activities_with_work(rec))
    assert [wanted(i) for i in items] == [True, True, False]
    # RL1: three learners did the work, none has a result → item_not_active's heuristic will ask
    # whether other items have results (li-3 has a teacher's grade): the rest must be read.
    first = CourseSnapshot(items, {"li-1": [], "li-2": []}, ROSTER, results_not_read=frozenset({"li-3"}))
    assert rest_needed(rec, course, first)
    full = CourseSnapshot(items, {"li-1": [], "li-2": [], "li-3": [result("li-3", "u2", 5.0)]}, ROSTER)
    d = diagnose_course(rec, course, full, ScoreGrant(True), suite_gaps(rec, course, full))
    assert [(f.category, f.resource_link_id) for f in d.findings if f.level == "item"] == [("item_not_active", "RL1")]
    # once RL1's grades are present, nothing looks inactive: the future item stays unread
    synced = CourseSnapshot(items, {"li-1": [result("li-1", u) for u in USERS], "li-2": []}, ROSTER,
                            results_not_read=frozenset({"li-3"}))
    assert not rest_needed(rec, course, synced)
    # a refusal as unpublished decides before the heuristic: no need for the other items either
    refused = Passback("u1", "RL1", 8.0, 10.0, T0, 422,
                       '{"errors":[{"field":"grade","message":"cannot be changed at this time: '
                       'This assignment is still unpublished","error_code":null}]}')
    rec, course = records(comps, links, [refused])
    wanted = results_wanted(course, activities_with_work(rec))
    assert not rest_needed(rec, course, first)
    assert not rest_needed(rec, course, CourseSnapshot(items, {"li-1": [], "li-2": [], "li-3": []}, ROSTER))
