"""Small builders for run summaries and settings used across the alert tests."""
from __future__ import annotations

from datetime import datetime, timezone

from gradesync.findings import CourseStatus, Finding, RunSummary
from gradesync.settings import Settings, SlackRoute, SlackSettings

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)


def learner(cat: str, platform: str, ctx: str, user: str, link: str = "rl-1") -> Finding:
    return Finding(category=cat, platform=platform, context_id=ctx, action=f"do something about {cat}",
                   resource_link_id=link, lms_user_id=user)


def course(cat: str, platform: str, ctx: str) -> Finding:
    return Finding(category=cat, platform=platform, context_id=ctx, action=f"fix {cat}")


def summary(run_id: int, findings: list[Finding], *, new: set[str] | None = None,
            resolved: list[Finding] | None = None, courses: list[CourseStatus] | None = None,
            expected: dict | None = None, present: dict | None = None,
            report_path: str | None = "reports/run-1.html") -> RunSummary:
    if courses is None:
        keys = sorted({(f.platform, f.context_id) for f in findings})
        courses = [CourseStatus(p, c, "audited", title=f"Course {c}") for p, c in keys]
    return RunSummary(run_id=run_id, kind="nightly", started_at=T0, finished_at=T0, state="completed",
                      courses=courses, findings=findings,
                      new={f.identity for f in findings} if new is None else new,
                      resolved=resolved or [], report_path=report_path,
                      expected_grades=expected or {}, present_grades=present or {})


def settings(default: str | None = None, routes: list[SlackRoute] | None = None, **kw) -> Settings:
    return Settings(slack=SlackSettings(webhook_url=default, routes=routes or [], **kw))
