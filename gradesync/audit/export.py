"""The audit's JSON export (a public contract: the field names below are documented in the README)."""
from __future__ import annotations

from typing import Any

from sqlmodel import select

import models as m


def latest_run_id(database_url: str) -> int | None:
    with m.session_scope(m.make_engine(database_url)) as s:
        run = s.exec(select(m.AuditRun).where(m.AuditRun.kind != "resync").order_by(m.AuditRun.id.desc())).first()
        return run.id if run else None


def export_run(database_url: str, run_id: int, *, category: str | None = None) -> dict[str, Any]:
    """run_id, started_at, finished_at, state, courses[], findings[] (with the resync task if any)."""
    with m.session_scope(m.make_engine(database_url)) as s:
        run = s.get(m.AuditRun, run_id)
        if run is None:
            raise LookupError(f"no audit run {run_id}")
        courses = list(s.exec(select(m.CourseAudit).where(m.CourseAudit.run_id == run_id)
                              .order_by(m.CourseAudit.platform, m.CourseAudit.context_id)))
        q = select(m.Finding).where(m.Finding.run_id == run_id).order_by(m.Finding.id)
        if category:
            q = q.where(m.Finding.category == m.FindingCategory(category))
        findings = list(s.exec(q))
        tasks = {t.identity: t for t in s.exec(select(m.ResyncTask).where(
            m.ResyncTask.identity.in_([f.identity for f in findings]))).all()} if findings else {}
        return {
            "run_id": run.id, "kind": run.kind, "state": run.state,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "report": run.report_path,
            "courses": [{"platform": c.platform, "context_id": c.context_id, "status": c.status, "reason": c.reason}
                        for c in courses],
            "findings": [_finding(f, tasks.get(f.identity)) for f in findings],
        }


def _finding(f: m.Finding, task: m.ResyncTask | None) -> dict[str, Any]:
    return {
        "id": f.id, "identity": f.identity, "category": f.category.value, "platform": f.platform,
        "context_id": f.context_id, "resource_link_id": f.resource_link_id, "activity_id": f.activity_id,
        "line_item_id": f.line_item_id, "account_id": f.account_id, "lms_user_id": f.lms_user_id,
        "tool_score": f.tool_score, "tool_maximum": f.tool_maximum, "lms_score": f.lms_score,
        "lms_maximum": f.lms_maximum, "evidence": dict(f.evidence or {}), "action": f.action,
        "resync": None if task is None else {"task_id": task.id, "state": task.state.value,
                                             "attempts": task.attempts},
    }
