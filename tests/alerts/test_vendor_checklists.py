"""Incident checklists in each LMS's own terms: a Moodle course never gets Canvas steps (issue 14).
Through send_run_alerts with a real gradesync.toml (vendors from [[platforms]]) and the local Slack capture."""
from __future__ import annotations

import io
import json

from rich.console import Console

from gradesync.alerts import SlackSender, send_run_alerts
from gradesync.findings import CourseStatus
from gradesync.settings import load_settings
from models.audit import AuditRun

from .factories import T0, course, learner, summary


def _no_grades(platform: str, ctx: str):
    fs = [learner("missing_in_lms", platform, ctx, f"u{i}") for i in range(4)]
    return fs, {(platform, ctx): 4}


def test_no_grades_and_unreachable_checklists_use_the_platforms_own_terms(session, slack, write_config):
    session.add(AuditRun(id=1, kind="nightly", state="completed"))
    session.commit()
    cfg_path = write_config(platforms=[("uni-moodle", "moodle", ["moodle.test"]), ("uni-canvas", "canvas", ["canvas.test"])],
                            extra=f'[slack]\nwebhook_url = "{slack.url("all")}"\n\n')
    cfg = load_settings(cfg_path)
    m_fs, m_exp = _no_grades("uni-moodle", "m1")
    c_fs, c_exp = _no_grades("uni-canvas", "c1")
    gone = course("course_unreachable", "uni-moodle", "m2")
    s = summary(1, [*m_fs, *c_fs, gone], expected={**m_exp, **c_exp}, present={},
                courses=[CourseStatus("uni-moodle", "m1", "audited", title="Moodle course"),
                         CourseStatus("uni-canvas", "c1", "audited", title="Canvas course"),
                         CourseStatus("uni-moodle", "m2", "unverified", reason="404 gone", title="Old"),
                         CourseStatus("uni-moodle", "m3", "audited", title="Fine")])
    send_run_alerts(session, s, cfg, now=T0, console=Console(file=io.StringIO()),
                    sender=SlackSender(backoff=0.01, max_retries=1))
    texts = {p.body["text"]: json.dumps(p.body["blocks"]) for p in slack.posts_to("all")}
    moodle = next(b for t, b in texts.items() if "No grades syncing in uni-moodle" in t)
    canvas = next(b for t, b in texts.items() if "No grades syncing in uni-canvas" in t)
    unreachable = next(b for t, b in texts.items() if "Course unreachable" in t)
    assert "Canvas" not in moodle and "Blueprint" not in moodle and "Moodle gradebook" in moodle
    assert "Blueprint" in canvas and "deployment scope" in canvas and "Moodle" not in canvas
    assert "Canvas" not in unreachable and "Moodle course" in unreachable
