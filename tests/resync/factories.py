"""Small builders for resync tests: audit runs, course statuses and stored findings."""
from __future__ import annotations

from datetime import datetime, timezone

import models as m
from gradesync.diagnosis.actions import ACTIONS
from gradesync.findings import identity_of, level_of

COMPLETED = datetime(2025, 3, 1, 10, 0, 0, tzinfo=timezone.utc)


def new_run(s, courses: list[tuple[str, str]] | None = None, *, unverified: list[tuple[str, str]] = (),
            kind: str = "nightly") -> int:
    """An audit run with `courses` audited and `unverified` not; returns its id."""
    run = m.AuditRun(kind=kind, state="completed")
    s.add(run)
    s.flush()
    for p, c in courses or []:
        s.add(m.CourseAudit(run_id=run.id, platform=p, context_id=c, status="audited"))
    for p, c in unverified:
        s.add(m.CourseAudit(run_id=run.id, platform=p, context_id=c, status="unverified", reason="test"))
    s.flush()
    return run.id


def finding(s, run_id: int, category: str, *, platform: str = "canvas-main", context_id: str = "c1",
            resource_link_id: str = "rl1", line_item_id: str = "https://lms.test/li/1", user: str = "u1",
            tool: float = 8.0, maximum: float = 10.0, lms: float | None = None, account: str | None = "acc-u1",
            activity: str = "act1", evidence: dict | None = None) -> m.Finding:
    """Store one learner finding in run `run_id` and return it."""
    row = m.Finding(run_id=run_id, identity=identity_of(category, platform, context_id, resource_link_id, user),
                    category=m.FindingCategory(category), level=level_of(category), platform=platform,
                    context_id=context_id, resource_link_id=resource_link_id, activity_id=activity,
                    line_item_id=line_item_id, account_id=account, lms_user_id=user, tool_score=tool,
                    tool_maximum=maximum, lms_score=lms, lms_maximum=10.0 if lms is not None else None,
                    evidence=evidence or {}, action=ACTIONS[category])
    s.add(row)
    s.flush()
    return row
