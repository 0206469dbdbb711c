"""The night in batches: a run's courses split per platform into batches, each audited on its own (one
LTI client, one database session, its own flow run — on any worker) and written to the database; the
run's own steps (new / resolved, alerts, report) then read the database, never a batch's memory.

A batch is written in one transaction and is idempotent: a retried batch first deletes what an earlier
try of the same batch wrote for its courses in this run, so nothing is written twice.
"""
from __future__ import annotations

import os
import resource
import socket
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import select

import models as m
from models.db import bulk_insert
from gradesync.audit.records import AuditScope, CourseRef
from gradesync.diagnosis.course import CourseDiagnosis
from gradesync.diagnosis.inputs import CourseSnapshot
from gradesync.findings import DataQualityWarning, Finding

class StepClock:
    """Seconds spent per step of a batch (stored with the batch: where a night's time goes)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.seconds[step] = round(self.seconds.get(step, 0.0) + now - self._last, 3)
        self._last = now


@dataclass(frozen=True)
class BatchPlan:
    """One batch of a run: `seq` (1..), the platform, its courses (context ids, in scope order)."""
    seq: int
    platform: str
    context_ids: tuple[str, ...]


def plan_batches(scope: AuditScope, batch_courses: int) -> list[BatchPlan]:
    """Each platform's courses in chunks of `batch_courses` (a batch never mixes platforms: one client,
    one developer key)."""
    plans: list[BatchPlan] = []
    for platform in scope.platforms:
        ctxs = [c.context_id for c in scope.courses if c.platform == platform]
        for i in range(0, len(ctxs), batch_courses):
            plans.append(BatchPlan(len(plans) + 1, platform, tuple(ctxs[i:i + batch_courses])))
    return plans


def batch_scope(scope: AuditScope, plan: BatchPlan) -> AuditScope:
    """The part of a run's scope one batch audits."""
    wanted = set(plan.context_ids)
    courses = [c for c in scope.courses if c.platform == plan.platform and c.context_id in wanted]
    return AuditScope([plan.platform], courses, scope.activities, {plan.platform: scope.vendors[plan.platform]})


def scope_of_courses(database_url: str, settings, platform: str, context_ids: list[str],
                     activities: list[str] | None) -> AuditScope:
    """A batch's scope rebuilt from its parameters (a batch on another worker gets names, not objects)."""
    with m.session_scope(m.make_engine(database_url)) as s:
        rows = []
        for i in range(0, len(context_ids), 5_000):
            rows += list(s.exec(select(m.Course).where(m.Course.platform == platform,
                                                       m.Course.context_id.in_(context_ids[i:i + 5_000]),
                                                       m.Course.retired_at.is_(None))))
    by_ctx = {r.context_id: r for r in rows}
    refs = [CourseRef(platform, c, by_ctx[c].lineitems_url, by_ctx[c].memberships_url)
            for c in context_ids if c in by_ctx]
    return AuditScope([platform], refs, activities, {platform: settings.platform(platform).vendor.value})


def worker_name() -> str:
    """Who ran a batch: GRADESYNC_WORKER_NAME when the worker sets it (its flow-run processes inherit
    it), else host:pid of the process."""
    return os.environ.get("GRADESYNC_WORKER_NAME") or f"{socket.gethostname()}:{os.getpid()}"


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _batch_row(s, run_id: int, plan: BatchPlan) -> m.AuditBatch:
    """The batch's row: the planned one, or a new one (a batch started without the parent's plan)."""
    row = s.exec(select(m.AuditBatch).where(m.AuditBatch.run_id == run_id, m.AuditBatch.seq == plan.seq)).first()
    if row is None:
        row = m.AuditBatch(run_id=run_id, seq=plan.seq, platform=plan.platform, course_count=len(plan.context_ids))
        s.add(row)
    return row


def start_batch(database_url: str, run_id: int, plan: BatchPlan, flow_run_id: str | None) -> int:
    """The batch's row (created, or taken over by a retry of the same batch); returns its id."""
    with m.session_scope(m.make_engine(database_url)) as s:
        row = _batch_row(s, run_id, plan)
        row.state, row.error = "running", None
        row.flow_run_id = flow_run_id or None
        row.worker = worker_name()
        row.started_at = m.utcnow()
        s.flush()
        return row.id


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


def _insert(s, model, rows: list[dict]) -> None:
    """COPY on PostgreSQL, one executemany on SQLite (models.db.bulk_insert)."""
    if rows:
        bulk_insert(s, model, rows)


def save_batch(database_url: str, run_id: int, batch_id: int, diagnoses: list[CourseDiagnosis],
               snapshots: dict[tuple[str, str], CourseSnapshot], request_stats: dict[str, Any],
               validation: list[dict], warnings: list[DataQualityWarning],
               activities: set[str] | None, timings: dict[str, float] | None = None) -> dict[str, Any]:
    """Write one batch's course statuses, snapshots and findings, and queue its resync tasks, in one
    transaction; returns the batch's counts (with `timings`: seconds per step, this write included)."""
    from gradesync.resync.queue import queue_from_findings

    started = time.perf_counter()
    findings = [f for d in diagnoses for f in d.findings]
    keys = [(d.status.platform, d.status.context_id) for d in diagnoses]
    with m.session_scope(m.make_engine(database_url)) as s:
        _forget_earlier_try(s, run_id, keys)
        _insert(s, m.CourseAudit, [dict(run_id=run_id, platform=d.status.platform, context_id=d.status.context_id,
                                        status=d.status.status, reason=d.status.reason, batch_id=batch_id,
                                        expected_count=d.expected_count, present_count=d.present_count)
                                   for d in diagnoses])
        items, results, members = [], [], []
        for key, snap in snapshots.items():
            if snap.error is None:
                a, b, c = _snapshot_rows(run_id, key, snap)
                items += a
                results += b
                members += c
        for model, rows in ((m.LmsLineItem, items), (m.LmsResult, results), (m.LmsMember, members)):
            _insert(s, model, rows)
        _insert(s, m.Finding, [_finding_row(run_id, f) for f in findings])
        s.flush()
        stored = _stored_findings(s, run_id, keys)
        queued = queue_from_findings(s, run_id, stored, activities=activities, courses=set(keys))
        counts = {"courses": len(diagnoses),
                  "unverified": sum(1 for d in diagnoses if d.status.status == "unverified"),
                  "findings": len(findings), "by_category": dict(Counter(f.category for f in findings)),
                  "expected_grades": sum(d.expected_count for d in diagnoses),
                  "present_grades": sum(d.present_count for d in diagnoses),
                  "lms_rows": len(items) + len(results) + len(members),
                  "resync_queue": asdict(queued),
                  "timings": {**(timings or {}), "save": round(time.perf_counter() - started, 3)}}
        batch = s.get(m.AuditBatch, batch_id)
        batch.state = "completed"
        batch.finished_at = m.utcnow()
        batch.request_stats = request_stats
        batch.counts = counts
        batch.validation = validation
        batch.warnings = [asdict(w) for w in warnings]
        batch.peak_rss_mb = peak_rss_mb()
    return counts


def _chunks(keys: list[tuple[str, str]], size: int = 2_000):
    by_platform: dict[str, list[str]] = {}
    for p, c in keys:
        by_platform.setdefault(p, []).append(c)
    for p, ctxs in by_platform.items():
        for i in range(0, len(ctxs), size):
            yield p, ctxs[i:i + size]


def _forget_earlier_try(s, run_id: int, keys: list[tuple[str, str]]) -> None:
    """A retried batch replaces what an earlier try wrote for its courses in this run (idempotent)."""
    for model in (m.CourseAudit, m.Finding, m.LmsLineItem, m.LmsResult, m.LmsMember):
        for p, ctxs in _chunks(keys):
            s.execute(delete(model).where(model.run_id == run_id, model.platform == p, model.context_id.in_(ctxs)))


def _stored_findings(s, run_id: int, keys: list[tuple[str, str]]) -> list[m.Finding]:
    out: list[m.Finding] = []
    for p, ctxs in _chunks(keys):
        out += list(s.exec(select(m.Finding).where(m.Finding.run_id == run_id, m.Finding.platform == p,
                                                   m.Finding.context_id.in_(ctxs)).order_by(m.Finding.id)))
    return out


def fail_batch(database_url: str, run_id: int, plan: BatchPlan, reason: str) -> None:
    """A batch that could not finish: its courses that have no status yet are unverified with the
    reason (never a false finding); the run becomes partial."""
    with m.session_scope(m.make_engine(database_url)) as s:
        row = _batch_row(s, run_id, plan)
        if row.state == "completed":
            return
        row.state, row.error, row.finished_at = "failed", reason[:2000], m.utcnow()
        s.flush()
        done = set()
        for p, ctxs in _chunks([(plan.platform, c) for c in plan.context_ids]):
            done |= set(s.exec(select(m.CourseAudit.context_id).where(
                m.CourseAudit.run_id == run_id, m.CourseAudit.platform == p, m.CourseAudit.context_id.in_(ctxs))))
        rows = [dict(run_id=run_id, platform=plan.platform, context_id=c, status="unverified",
                     reason=f"audit batch {plan.seq} failed: {reason}"[:2000], batch_id=row.id)
                for c in plan.context_ids if c not in done]
        _insert(s, m.CourseAudit, rows)


def batch_rows(database_url: str, run_id: int) -> list[m.AuditBatch]:
    with m.session_scope(m.make_engine(database_url)) as s:
        rows = list(s.exec(select(m.AuditBatch).where(m.AuditBatch.run_id == run_id).order_by(m.AuditBatch.seq)))
        s.expunge_all()
        return rows


def mark_batches_planned(database_url: str, run_id: int, plans: list[BatchPlan]) -> None:
    """One row per planned batch, so a batch that never started is visible (and failed by the run)."""
    with m.session_scope(m.make_engine(database_url)) as s:
        s.execute(update(m.AuditRun).where(m.AuditRun.id == run_id).values(
            counts={"batches": len(plans), "course_count": sum(len(p.context_ids) for p in plans)}))
        _insert(s, m.AuditBatch, [dict(run_id=run_id, seq=p.seq, platform=p.platform,
                                       course_count=len(p.context_ids), state="planned", request_stats={},
                                       counts={}, validation=[], warnings=[]) for p in plans])
