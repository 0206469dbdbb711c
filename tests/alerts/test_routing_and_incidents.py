"""Routing by platform/category/severity and the incident lifecycle (once, reminder, reopen) as pure data."""
from __future__ import annotations

from datetime import timedelta

from gradesync.alerts.incidents import AlertRecord, detect_incidents, incident_decision, is_reopened
from gradesync.alerts.plan import plan_run_alerts
from gradesync.alerts.routing import build_routes, redact, webhook_host
from gradesync.findings import CourseStatus
from gradesync.settings import SlackRoute, SlackSettings

from .factories import T0, course, learner, summary


def _mixed():
    fs = [learner("missing_in_lms", "canvas", "c1", "u1"), learner("score_mismatch", "canvas", "c1", "u2"),
          learner("missing_in_lms", "moodle", "m1", "u3"), learner("manual_grade_conflict", "moodle", "m1", "u4")]
    return summary(3, fs)


def test_default_route_gets_everything_and_filtered_routes_only_their_findings():
    slack = SlackSettings(webhook_url="https://hooks.slack.com/services/T/B/all", routes=[
        SlackRoute(name="moodle-team", platforms=["moodle"], webhook_url="https://hooks.slack.com/services/T/B/m"),
        SlackRoute(name="conflicts", categories=["manual_grade_conflict"], severities=["digest"],
                   webhook_env="GS_TEST_CONFLICTS_HOOK"),
    ])
    table = build_routes(slack, env={"GS_TEST_CONFLICTS_HOOK": "https://hooks.slack.com/services/T/B/c"})
    assert [r.name for r in table.routes] == ["moodle-team", "conflicts", "default"]
    plans = {p.route.name: p for p in plan_run_alerts(_mixed(), table, [], now=T0, reminder_days=3)}
    assert plans["default"].message.text.startswith("gradesync nightly audit run 3: 4 findings (4 new)")
    assert plans["moodle-team"].message.text.startswith("gradesync nightly audit run 3 [moodle]: 2 findings")
    assert plans["conflicts"].message.text.startswith(
        "gradesync nightly audit run 3 [manual_grade_conflict]: 1 findings (1 new)")
    assert plans["conflicts"].route.url.endswith("/c")


def test_unset_webhook_env_is_a_named_problem_not_a_crash():
    slack = SlackSettings(routes=[SlackRoute(name="x", webhook_env="GS_TEST_UNSET_HOOK")])
    (route,) = build_routes(slack, env={}).routes
    assert route.url is None and route.problem == "environment variable GS_TEST_UNSET_HOOK is not set"


def test_webhook_url_is_reduced_to_its_host_in_logs():
    url = "https://hooks.slack.com/services/T0/B0/SeCrEt"
    assert webhook_host(url) == "hooks.slack.com"
    assert "SeCrEt" not in redact(f"<urlopen error {url}> and /services/T0/B0/SeCrEt", url)


def test_incidents_platform_course_grades_and_no_grades_syncing():
    fs = [course("grades_not_accepted", "d2l", f"d{i}") for i in range(3)]
    fs += [course("course_unreachable", "canvas", "c9")]
    fs += [learner("missing_in_lms", "canvas", "c1", f"u{i}") for i in range(3)]
    fs += [learner("missing_in_lms", "canvas", "c2", f"u{i}") for i in range(2)]
    courses = [CourseStatus("d2l", f"d{i}", "unverified", reason="token refused") for i in range(3)]
    courses += [CourseStatus("canvas", c, "audited") for c in ("c1", "c2", "c3")]
    courses += [CourseStatus("canvas", "c9", "unverified", reason="HTTP 404 course not found")]
    courses += [CourseStatus("blackboard", f"b{i}", "unverified", reason="token endpoint unavailable")
                for i in range(2)]
    s = summary(5, fs, courses=courses,
                expected={("canvas", "c1"): 3, ("canvas", "c2"): 2, ("canvas", "c3"): 5},
                present={("canvas", "c3"): 1})
    by_key = {i.key: i for i in detect_incidents(s)}
    assert set(by_key) == {"grades_not_accepted|d2l", "platform_unreachable|blackboard",
                           "course_unreachable|canvas|c9", "no_grades_syncing|canvas|c1"}
    assert by_key["grades_not_accepted|d2l"].headline == "Grades not accepted on d2l (3 courses)"
    assert by_key["platform_unreachable|blackboard"].details == ("• token endpoint unavailable: 2 courses",)
    nogr = by_key["no_grades_syncing|canvas|c1"]
    assert nogr.details == ("• 0 of 3 expected grades are in the LMS gradebook",)
    assert any("Blueprint" in c for c in nogr.checklist) and any("deployment scope" in c for c in nogr.checklist)
    assert any("accept grades" in c for c in nogr.checklist)


def test_platform_wholly_unreachable_replaces_its_per_course_incidents():
    fs = [course("course_unreachable", "canvas", f"c{i}") for i in range(4)]
    courses = [CourseStatus("canvas", f"c{i}", "unverified", reason="HTTP 401") for i in range(4)]
    keys = [i.key for i in detect_incidents(summary(1, fs, courses=courses))]
    assert keys == ["platform_unreachable|canvas"]


def _row(run_id, kind, days_ago, status="sent", key="k", route="r"):
    return AlertRecord(run_id, kind, route, key, status, T0 - timedelta(days=days_ago))


def test_incident_once_then_quiet_then_reminder_after_n_days():
    decide = lambda hist, run, reopened=False: incident_decision(  # noqa: E731
        "k", "r", hist, run_id=run, now=T0, reminder_days=3, reopened=reopened)
    assert decide([], 1) == "incident"
    assert decide([_row(1, "incident", 1)], 2) is None
    assert decide([_row(1, "incident", 2)], 3) is None
    assert decide([_row(1, "incident", 3)], 4) == "reminder"
    assert decide([_row(1, "incident", 6), _row(4, "reminder", 2)], 5) is None     # counts from the reminder
    assert decide([_row(1, "incident", 1, status="failed")], 2) == "incident"      # never delivered: retry
    assert decide([_row(7, "incident", 0)], 7) is None                             # re-run of run 7
    assert decide([_row(1, "incident", 1)], 9, reopened=True) == "incident"        # resolved and came back
    assert decide([_row(1, "incident", 1, route="other")], 2) == "incident"        # per route


def test_reopened_only_when_every_finding_behind_it_is_new():
    fs = [learner("missing_in_lms", "canvas", "c1", f"u{i}") for i in range(3)]
    inc = detect_incidents(summary(2, fs, expected={("canvas", "c1"): 3}))[0]
    assert is_reopened(inc, {f.identity for f in fs})
    assert not is_reopened(inc, {fs[0].identity})


def test_resolved_incident_gets_nothing_and_many_incidents_are_one_message():
    table = build_routes(SlackSettings(webhook_url="https://hooks.slack.com/services/T/B/x"))
    history = [_row(1, "incident", 5, key="course_unreachable|canvas|c1", route="default")]
    quiet = summary(2, [learner("missing_in_lms", "canvas", "c1", "u1")])
    assert [p.kind for p in plan_run_alerts(quiet, table, history, now=T0, reminder_days=3)] == ["digest"]

    fs = [course("course_unreachable", "canvas", f"c{i}") for i in range(40)]
    courses = [CourseStatus("canvas", f"c{i}", "unverified", reason="HTTP 404") for i in range(40)]
    courses.append(CourseStatus("canvas", "ok", "audited"))
    plans = plan_run_alerts(summary(2, fs, courses=courses), table, [], now=T0, reminder_days=3)
    assert [p.kind for p in plans] == ["digest", "incident"]
    assert len(plans[1].rows) == 40 and plans[1].message.text == "gradesync: 40 course-wide incidents"
    assert len(plans[1].message.to_payload()["blocks"]) <= 50


def test_incident_routes_by_severity_platform_and_category():
    slack = SlackSettings(routes=[
        SlackRoute(name="digests", severities=["digest"], webhook_url="https://h/1"),
        SlackRoute(name="canvas-incidents", platforms=["canvas"], severities=["incident"], webhook_url="https://h/2"),
        SlackRoute(name="moodle", platforms=["moodle"], webhook_url="https://h/3"),
        SlackRoute(name="unreach", categories=["course_unreachable"], webhook_url="https://h/4"),
    ])
    fs = [course("course_unreachable", "canvas", "c1")]
    courses = [CourseStatus("canvas", "c1", "unverified", reason="HTTP 404"), CourseStatus("canvas", "c2", "audited")]
    plans = plan_run_alerts(summary(1, fs, courses=courses), build_routes(slack), [], now=T0, reminder_days=3)
    got = sorted((p.route.name, p.kind) for p in plans)
    assert got == [("canvas-incidents", "incident"), ("digests", "digest"), ("moodle", "digest"),
                   ("unreach", "digest"), ("unreach", "incident")]


def test_on_demand_audit_of_one_unreachable_course_is_not_a_platform_incident():
    s = summary(1, [], courses=[CourseStatus("moodle", "m1", "unverified", reason="HTTP 503")])
    s.kind = "course-audit"
    assert detect_incidents(s) == []
    s.kind = "nightly"
    assert [i.key for i in detect_incidents(s)] == ["platform_unreachable|moodle"]
