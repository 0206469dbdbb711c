"""The digest printed on the console (no webhook configured) wraps long course lines with a hanging
indent: every entry of "most affected courses" stays one visible entry at any width."""
from __future__ import annotations

import io

from rich.console import Console

from gradesync.alerts import send_run_alerts
from gradesync.findings import CourseStatus
from models.audit import AuditRun

from .factories import T0, learner, settings, summary


def test_console_digest_wraps_long_course_lines_under_their_entry(session):
    session.add(AuditRun(id=1, kind="nightly", started_at=T0, state="completed"))
    session.commit()
    fs = [learner("missing_in_lms", "canvas-main", f"{i:040x}", f"u{i}") for i in range(4)]
    courses = [CourseStatus("canvas-main", f"{i:040x}", "audited",
                            title=f"Network+ Essentials — section 00{i} (Late Spring 2026)") for i in range(4)]
    out = io.StringIO()
    send_run_alerts(session, summary(1, fs, courses=courses), settings(), now=T0,
                    console=Console(file=out, width=80))
    lines = out.getvalue().splitlines()
    assert all(len(ln) <= 80 or " " not in ln.strip() for ln in lines), lines
    entries = [i for i, ln in enumerate(lines) if ln.lstrip().startswith("canvas-main / Network+")]
    assert len(entries) == 4, lines
    for i in entries:
        indent = len(lines[i]) - len(lines[i].lstrip())
        follow = lines[i + 1]
        assert len(follow) - len(follow.lstrip()) > indent, (lines[i], follow)   # continuation, indented deeper
