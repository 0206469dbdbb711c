"""An audit run's row: started, closed (state and counts from its batches: gradesync/audit/batch.py),
failed; and the run read back as a RunSummary with new / still open / resolved findings."""
from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import and_, func
from sqlmodel import select

import models as m
from gradesync.audit import changes
from gradesync.findings import CourseStatus, DataQualityWarning, Finding, RunSummary


def open_database(url: str) -> str:
    """Bring the database to the newest migration (the first run does this) and return its URL."""
    m.upgrade_database(url)
    return url


def start_run(database_url: str, kind: str, params: dict[str, Any], flow_run_id: str | None) -> int:
    with m.session_scope(m.make_engine(database_url)) as s:
        run = m.AuditRun(kind=kind, params=params, flow_run_id=flow_run_id or None, state="running")
        s.add(run)
        s.flush()
        return run.id


def close_run(database_url: str, run_id: int) -> RunSummary:
    """After every batch: the run's state and counts from its batches and course statuses, and the
    run as a RunSummary (new / resolved against each course's previous audit)."""
    with m.session_scope(m.make_engine(database_url)) as s:
        run = s.get(m.AuditRun, run_id)
        batches = list(s.exec(select(m.AuditBatch).where(m.AuditBatch.run_id == run_id)))
        statuses = dict(s.exec(select(m.CourseAudit.status, func.count()).where(m.CourseAudit.run_id == run_id)
                               .group_by(m.CourseAudit.status)).all())
        by_category = {(k.value if hasattr(k, "value") else str(k)): n for k, n in s.exec(
            select(m.Finding.category, func.count()).where(m.Finding.run_id == run_id)
            .group_by(m.Finding.category)).all()}
        expected, present = s.exec(select(func.coalesce(func.sum(m.CourseAudit.expected_count), 0),
                                          func.coalesce(func.sum(m.CourseAudit.present_count), 0))
                                   .where(m.CourseAudit.run_id == run_id)).one()
        warnings = [DataQualityWarning(**w) for b in batches for w in (b.warnings or [])]
        unverified = statuses.get("unverified", 0)
        failed_batches = sum(1 for b in batches if b.state != "completed")
        run.state = "partial" if unverified or failed_batches else "completed"
        run.request_stats = merge_request_stats([b.request_stats or {} for b in batches])
        run.counts = {**(run.counts or {}), "courses": sum(statuses.values()), "unverified": unverified,
                      "findings": sum(by_category.values()), "by_category": by_category,
                      "expected_grades": int(expected), "present_grades": int(present),
                      "data_quality_warnings": len(warnings), "batches": len(batches),
                      "failed_batches": failed_batches,
                      "batch_peak_rss_mb": max((b.peak_rss_mb or 0 for b in batches), default=0)}
        per_course = list(s.exec(select(m.CourseAudit.platform, m.CourseAudit.context_id, m.CourseAudit.expected_count,
                                        m.CourseAudit.present_count).where(m.CourseAudit.run_id == run_id)))
        not_read = dict((run.params or {}).get("not_read") or {})
    summary = load_summary(database_url, run_id)
    summary.not_read = not_read
    summary.dq_warnings = warnings
    summary.expected_grades = {(p, c): e or 0 for p, c, e, _ in per_course}
    summary.present_grades = {(p, c): n or 0 for p, c, _, n in per_course}
    return summary


def merge_request_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-platform request counters of several batches, added up."""
    out: dict[str, dict[str, Any]] = {}
    for part in parts:
        for platform, stats in part.items():
            acc = out.setdefault(platform, {"requests": {}, "total": 0, "retries": 0, "throttled": 0,
                                            "throttle_wait_s": 0.0})
            for kind, n in (stats.get("requests") or {}).items():
                acc["requests"][kind] = acc["requests"].get(kind, 0) + n
            for k in ("total", "retries", "throttled"):
                acc[k] += int(stats.get(k) or 0)
            acc["throttle_wait_s"] = round(acc["throttle_wait_s"] + float(stats.get("throttle_wait_s") or 0), 3)
    return out


def _as_finding(row: m.Finding) -> Finding:
    return Finding(category=row.category.value, platform=row.platform, context_id=row.context_id, action=row.action,
                   resource_link_id=row.resource_link_id, activity_id=row.activity_id, line_item_id=row.line_item_id,
                   account_id=row.account_id, lms_user_id=row.lms_user_id, tool_score=row.tool_score,
                   tool_maximum=row.tool_maximum, lms_score=row.lms_score, lms_maximum=row.lms_maximum,
                   evidence=dict(row.evidence or {}))


def load_summary(database_url: str, run_id: int) -> RunSummary:
    """A stored run as a RunSummary, with new/resolved computed against each course's previous audit
    (gradesync/audit/changes.py: set-based over the whole run)."""
    with m.session_scope(m.make_engine(database_url)) as s:
        run = s.get(m.AuditRun, run_id)
        courses = list(s.exec(select(m.CourseAudit).where(m.CourseAudit.run_id == run_id)))
        rows = list(s.exec(select(m.Finding).where(m.Finding.run_id == run_id).order_by(m.Finding.id)))
        titles = dict(((p, ctx), title) for p, ctx, title in s.exec(
            select(m.Course.platform, m.Course.context_id, m.Course.title).join(m.CourseAudit, and_(
                m.CourseAudit.platform == m.Course.platform, m.CourseAudit.context_id == m.Course.context_id))
            .where(m.CourseAudit.run_id == run_id)))
        new, resolved = changes.run_changes(s, run_id, run_activities(run))
        summary = RunSummary(
            run_id=run.id, kind=run.kind, started_at=run.started_at, finished_at=run.finished_at, state=run.state,
            courses=[CourseStatus(c.platform, c.context_id, c.status, c.reason, titles.get((c.platform, c.context_id)))
                     for c in courses],
            findings=[_as_finding(r) for r in rows], new=new, resolved=[_as_finding(r) for r in resolved],
            report_path=run.report_path, request_stats=dict(run.request_stats or {}),
            history=changes.history(s, run_id), approvals=_approvals_since_previous_audit(s, run))
        return summary


def _approvals_since_previous_audit(s, run: m.AuditRun) -> list[tuple[str, str, str]]:
    """Supersedes approved (`gradesync resync approve --by`) since the audit before this one."""
    prev = s.exec(select(m.AuditRun).where(m.AuditRun.id < run.id, m.AuditRun.kind != "resync")
                  .order_by(m.AuditRun.id.desc())).first()
    q = select(m.ResyncTask).where(m.ResyncTask.approved_at.is_not(None))
    if prev is not None:
        q = q.where(m.ResyncTask.approved_at >= prev.started_at)
    return [(t.approved_by or "?", t.platform, t.state.value) for t in s.exec(q.order_by(m.ResyncTask.id))]


def finish_run(database_url: str, run_id: int, summary: RunSummary) -> None:
    with m.session_scope(m.make_engine(database_url)) as s:
        run = s.get(m.AuditRun, run_id)
        run.finished_at = m.utcnow()
        run.report_path = summary.report_path
        summary.finished_at = run.finished_at


def run_activities(run: m.AuditRun) -> set[str] | None:
    """The activities an on-demand audit was narrowed to (`--activity`), or None for all."""
    acts = (run.params or {}).get("activities")
    return set(acts) if acts else None


def in_scope(activity_id: str | None, activities: set[str] | None) -> bool:
    """Whether a finding or task of `activity_id` lies inside a run's scope: a run narrowed to some
    activities says nothing about another activity's findings (they are neither new nor resolved)."""
    return activities is None or activity_id is None or activity_id in activities


def fail_run(database_url: str, run_id: int, error: str) -> None:
    with m.session_scope(m.make_engine(database_url)) as s:
        run = s.get(m.AuditRun, run_id)
        run.state = "failed"
        run.finished_at = m.utcnow()
        run.counts = {**(run.counts or {}), "error": error[:500]}


def outcome_of(summary: RunSummary) -> dict[str, Any]:
    """The run's JSON-able outcome (flow return value and `audit --json` base)."""
    return {"run_id": summary.run_id, "state": summary.state, "findings": len(summary.findings),
            "new": len(summary.new), "resolved": len(summary.resolved), "unverified": len(summary.unverified),
            "by_category": dict(Counter(f.category for f in summary.findings)), "report": summary.report_path,
            "not_read": dict(summary.not_read)}

