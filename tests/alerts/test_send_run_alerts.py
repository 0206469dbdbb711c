"""send_run_alerts end to end: real HTTP to the capture server, real alert_log rows in the database."""
from __future__ import annotations

import io
import json
from datetime import timedelta

from rich.console import Console
from sqlmodel import select

from gradesync.alerts import SlackSender, send_run_alerts
from gradesync.alerts.log import alerts_of_run
from gradesync.findings import CourseStatus
from gradesync.settings import SlackRoute
from models.alerts import AlertLog
from models.audit import AuditRun

from .factories import T0, course, learner, settings, summary

FAST = SlackSender(backoff=0.01, max_retries=2)


def _runs(session, *ids):
    for i in ids:
        session.add(AuditRun(id=i, kind="nightly", started_at=T0, state="completed"))
    session.commit()


def _quiet_console():
    return Console(file=io.StringIO(), width=200)


def _mixed(run_id=1, **kw):
    fs = [learner("missing_in_lms", "canvas", "c1", "u1"), learner("score_mismatch", "canvas", "c1", "u2"),
          learner("missing_in_lms", "moodle", "m1", "u3")]
    return summary(run_id, fs, **kw)


def test_digest_per_route_and_alert_log_holds_host_only(session, slack):
    _runs(session, 1)
    cfg = settings(slack.url("all"), [SlackRoute(name="moodle-team", platforms=["moodle"],
                                                 webhook_env="GS_TEST_MOODLE_HOOK")])
    out = send_run_alerts(session, _mixed(), cfg, console=_quiet_console(), sender=FAST, now=T0,
                          env={"GS_TEST_MOODLE_HOOK": slack.url("moodle")})
    assert (out.sent, out.failed, out.console, out.failures) == (2, 0, 0, [])
    (everything,) = slack.posts_to("all")
    (moodle,) = slack.posts_to("moodle")
    assert everything.body["text"].startswith("gradesync nightly audit run 1: 3 findings (3 new)")
    assert moodle.body["text"].startswith("gradesync nightly audit run 1 [moodle]: 1 findings (1 new)")
    assert "canvas" not in json.dumps(moodle.body["blocks"])
    rows = alerts_of_run(session, 1)
    assert sorted((r.route, r.kind, r.status, r.incident_key) for r in rows) == [
        ("default", "digest", "sent", ""), ("moodle-team", "digest", "sent", "")]
    host = slack.base.removeprefix("http://")
    assert all(r.target == host and r.attempts == 1 and r.sent_at == T0 for r in rows)
    assert all("secret-token" not in json.dumps([r.target, r.payload, r.error]) for r in rows)
    assert rows[0].payload["blocks"][0]["type"] == "header"


def test_rerun_of_the_same_run_sends_no_duplicate_digest(session, slack):
    _runs(session, 1)
    cfg = settings(slack.url("all"))
    first = send_run_alerts(session, _mixed(), cfg, console=_quiet_console(), sender=FAST, now=T0)
    again = send_run_alerts(session, _mixed(), cfg, console=_quiet_console(), sender=FAST, now=T0 + timedelta(hours=1))
    assert (first.sent, again.sent, again.failed) == (1, 0, 0)
    assert len(slack.posts_to("all")) == 1
    assert len(session.exec(select(AlertLog)).all()) == 1


def _no_grades(run_id, *, present=0, new=True):
    fs = [learner("missing_in_lms", "canvas", "c1", f"u{i}") for i in range(4)] if not present else []
    return summary(run_id, fs, new=None if new else set(),
                   courses=[CourseStatus("canvas", "c1", "audited", title="Bio")],
                   expected={("canvas", "c1"): 4}, present={("canvas", "c1"): present})


def test_incident_once_then_reminder_after_n_days_then_nothing_once_resolved(session, slack):
    _runs(session, 1, 2, 3, 4, 5)
    cfg = settings(slack.url("all"), incident_reminder_days=3)
    kw = dict(console=_quiet_console(), sender=FAST)

    def incidents():
        return [p.body for p in slack.posts_to("all") if not p.body["text"].startswith("gradesync nightly")]

    send_run_alerts(session, _no_grades(1), cfg, now=T0, **kw)
    (inc,) = incidents()
    assert inc["text"] == "gradesync incident: No grades syncing in canvas / Bio (c1)"
    blocks = json.dumps(inc["blocks"])
    assert "0 of 4 expected grades" in blocks and "Blueprint" in blocks and "deployment scope" in blocks

    send_run_alerts(session, _no_grades(2, new=False), cfg, now=T0 + timedelta(days=1), **kw)
    send_run_alerts(session, _no_grades(3, new=False), cfg, now=T0 + timedelta(days=2), **kw)
    assert len(incidents()) == 1                                   # still open: quiet
    send_run_alerts(session, _no_grades(4, new=False), cfg, now=T0 + timedelta(days=3), **kw)
    assert [b["text"] for b in incidents()][1] == \
        "gradesync reminder (open 3 days): No grades syncing in canvas / Bio (c1)"
    send_run_alerts(session, _no_grades(5, present=4), cfg, now=T0 + timedelta(days=9), **kw)
    assert len(incidents()) == 2                                   # resolved: nothing
    kinds = [(r.run_id, r.kind) for r in session.exec(select(AlertLog).where(AlertLog.kind != "digest"))]
    assert sorted(kinds) == [(1, "incident"), (4, "reminder")]
    assert len(slack.posts_to("all")) == 7                         # 5 digests + incident + reminder


def test_429_is_retried_then_recorded_as_sent_with_attempts(session, slack):
    _runs(session, 1)
    slack.script("all", (429, {"Retry-After": "1"}, "rate_limited"))
    out = send_run_alerts(session, _mixed(), settings(slack.url("all")), console=_quiet_console(),
                          sender=FAST, now=T0)
    assert out.sent == 1 and [p.status for p in slack.posts_to("all")] == [429, 200]
    (row,) = alerts_of_run(session, 1)
    assert (row.status, row.attempts) == ("sent", 2)


def test_permanent_failure_is_recorded_returned_and_retried_by_a_rerun(session, slack):
    _runs(session, 1)
    slack.script("all", *[(500, {}, "internal_error")] * 3)
    cfg = settings(slack.url("all"))
    out = send_run_alerts(session, _mixed(), cfg, console=_quiet_console(), sender=FAST, now=T0)
    assert (out.sent, out.failed) == (0, 1)
    host = slack.base.removeprefix("http://")
    assert out.failures == [f"Slack digest for run 1 → route 'default' ({host}): HTTP 500: internal_error "
                            "(after 3 attempts)"]
    (row,) = alerts_of_run(session, 1)
    assert (row.status, row.attempts, row.error) == ("failed", 3, "HTTP 500: internal_error")
    again = send_run_alerts(session, _mixed(), cfg, console=_quiet_console(), sender=FAST, now=T0)
    (row,) = alerts_of_run(session, 1)
    assert again.sent == 1 and (row.status, row.attempts, row.error) == ("sent", 4, None)


def test_unreachable_webhook_and_unset_env_never_raise(session):
    _runs(session, 1)
    cfg = settings("http://127.0.0.1:9/services/T/B/secret-token",
                   [SlackRoute(name="ops", webhook_env="GS_TEST_NOT_SET")])
    out = send_run_alerts(session, _mixed(), cfg, console=_quiet_console(), sender=FAST, now=T0, env={})
    assert (out.sent, out.failed) == (0, 2)
    assert "environment variable GS_TEST_NOT_SET is not set" in out.failures[0]
    assert "secret-token" not in " ".join(out.failures)
    assert {r.status for r in alerts_of_run(session, 1)} == {"failed"}


def test_no_webhook_prints_the_digest_and_saves_it_with_the_run(session):
    _runs(session, 1)
    buf = io.StringIO()
    fs = _mixed().findings + [course("course_unreachable", "canvas", "c7")]
    s = summary(1, fs, courses=[CourseStatus("canvas", "c1", "audited", title="Bio [2026] <A&B>"),
                                CourseStatus("moodle", "m1", "audited"),
                                CourseStatus("canvas", "c7", "unverified", reason="HTTP 404"),
                                CourseStatus("moodle", "m9", "unverified", reason="HTTP 503")])
    out = send_run_alerts(session, s, settings(), console=Console(file=buf, width=200), now=T0)
    printed = buf.getvalue()
    assert (out.sent, out.console, out.failed) == (0, 2, 0)       # the digest and the course incident
    assert "gradesync nightly audit run 1: 4 findings (4 new)" in printed
    assert "Bio [2026] <A&B>" in printed and "Could not audit: 2 courses" in printed
    assert "Course unreachable: canvas / c7" in printed and "&lt;" not in printed
    rows = {r.kind: r for r in alerts_of_run(session, 1)}
    assert rows["digest"].status == "console" and rows["digest"].route == "console"
    assert rows["digest"].payload["text"].startswith("gradesync nightly audit run 1: 4 findings")
    assert rows["incident"].incident_key == "course_unreachable|canvas|c7"
    again = send_run_alerts(session, s, settings(), console=Console(file=io.StringIO()), now=T0)
    assert (again.console, again.sent) == (0, 0)


def test_without_a_session_the_digest_is_still_printed():
    buf = io.StringIO()
    out = send_run_alerts(None, _mixed(), settings(), console=Console(file=buf, width=200), now=T0)
    assert out.console == 1 and "3 findings (3 new)" in buf.getvalue()
