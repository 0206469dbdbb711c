"""Storing an audit run: the run row, course statuses, LMS snapshots, findings; and reading the
previous run back to tell new / still open / resolved findings."""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert
from sqlmodel import select

import models as m
from gradesync.audit import changes
from gradesync.diagnosis.course import CourseDiagnosis
from gradesync.diagnosis.inputs import CourseSnapshot
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


def _snapshot_rows(run_id: int, key: tuple[str, str], snap: CourseSnapshot):
    platform, ctx = key
    items = [dict(run_id=run_id, platform=platform, context_id=ctx, line_item_id=li.id, label=li.label,
                  score_maximum=li.score_maximum, resource_link_id=li.resource_link_id, resource_id=li.resource_id,
                  tag=li.tag, start_date_time=li.start_date_time, end_date_time=li.end_date_time)
             for li in snap.line_items]
    results = [dict(run_id=run_id, platform=platform, context_id=ctx, line_item_id=item_id, user_id=r.user_id,
                    result_score=r.result_score, result_maximum=r.result_maximum, scoring_user_id=r.scoring_user_id,
                    comment=r.comment, timestamp=r.timestamp)
               for item_id, rs in snap.results.items() for r in rs]
    members = [dict(run_id=run_id, platform=platform, context_id=ctx, user_id=mb.user_id, roles=list(mb.roles),
                    status=mb.status, name=mb.name, email=mb.email) for mb in snap.members]
    return items, results, members


def _finding_row(run_id: int, f: Finding) -> dict[str, Any]:
    return dict(run_id=run_id, identity=f.identity, category=m.FindingCategory(f.category), level=f.level,
                platform=f.platform, context_id=f.context_id, resource_link_id=f.resource_link_id,
                activity_id=f.activity_id, line_item_id=f.line_item_id, account_id=f.account_id,
                lms_user_id=f.lms_user_id, tool_score=f.tool_score, tool_maximum=f.tool_maximum,
                lms_score=f.lms_score, lms_maximum=f.lms_maximum, evidence=f.evidence, action=f.action)


def save_run(database_url: str, run_id: int, diagnoses: list[CourseDiagnosis],
             snapshots: dict[tuple[str, str], CourseSnapshot], request_stats: dict[str, Any],
             warnings: list[DataQualityWarning]) -> RunSummary:
    """Persist everything the run saw and concluded; queue resync tasks; return the run's summary."""
    from gradesync.resync.queue import queue_from_findings

    engine = m.make_engine(database_url)
    findings = [f for d in diagnoses for f in d.findings]
    with m.session_scope(engine) as s:
        if diagnoses:
            s.execute(insert(m.CourseAudit), [dict(run_id=run_id, platform=d.status.platform,
                                                   context_id=d.status.context_id, status=d.status.status,
                                                   reason=d.status.reason) for d in diagnoses])
        items, results, members = [], [], []
        for key, snap in snapshots.items():
            if snap.error is None:
                a, b, c = _snapshot_rows(run_id, key, snap)
                items += a
                results += b
                members += c
        for model, rows in ((m.LmsLineItem, items), (m.LmsResult, results), (m.LmsMember, members)):
            for i in range(0, len(rows), 20_000):
                s.execute(insert(model), rows[i:i + 20_000])
        finding_rows = [_finding_row(run_id, f) for f in findings]
        for i in range(0, len(finding_rows), 20_000):
            s.execute(insert(m.Finding), finding_rows[i:i + 20_000])
        s.flush()
        stored = list(s.exec(select(m.Finding).where(m.Finding.run_id == run_id)))
        run = s.get(m.AuditRun, run_id)
        queue_from_findings(s, run_id, stored, activities=run_activities(run))

        unverified = sum(1 for d in diagnoses if d.status.status == "unverified")
        run.state = "partial" if unverified else "completed"
        run.request_stats = request_stats
        run.counts = {"courses": len(diagnoses), "unverified": unverified, "findings": len(findings),
                      "by_category": dict(Counter(f.category for f in findings)),
                      "expected_grades": sum(d.expected_count for d in diagnoses),
                      "present_grades": sum(d.present_count for d in diagnoses),
                      "data_quality_warnings": len(warnings)}
    summary = load_summary(database_url, run_id)
    summary.dq_warnings = warnings
    summary.expected_grades = {(d.status.platform, d.status.context_id): d.expected_count for d in diagnoses}
    summary.present_grades = {(d.status.platform, d.status.context_id): d.present_count for d in diagnoses}
    return summary


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
            "by_category": dict(Counter(f.category for f in summary.findings)), "report": summary.report_path}

