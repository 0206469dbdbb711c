"""The resync queue: one open task per (platform, line item, learner), kept in step with each audit.

`queue_from_findings` is called by the audit right after it stores a run's findings, in the same
session (so the run's `course_audit` rows are visible). Rules (issue 6 "Resync" 1):
- `missing_in_lms` / `score_mismatch` → a `pending` task; `manual_grade_conflict` → `needs_approval`
  (an approval already given is kept);
- a later audit updates the open task (scores, category, identity, updated_run_id), never adds a second;
- an open task whose cell has no resyncable finding any more, in a course this run *audited*, is
  `cancelled`: the gap closed by itself or changed cause. Courses left unverified keep their tasks.
- a task a worker holds right now (`claimed`) is only stamped with the run; the worker owns its state.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import tuple_
from sqlmodel import Session, select

import models as m
from gradesync.findings import NEEDS_APPROVAL, RESYNCABLE

QUEUED_CATEGORIES = RESYNCABLE | NEEDS_APPROVAL
Key = tuple[str, str, str]                       # (platform, line_item_id, lms_user_id)


@dataclass
class QueueCounts:
    """What one audit run did to the queue."""
    created: int = 0
    updated: int = 0            # an open task now reflects this run (data or state changed)
    unchanged: int = 0          # an open task this run confirmed as it was
    cancelled: int = 0
    needs_approval: int = 0     # of the created/updated, how many wait for an approval
    skipped: int = 0            # resyncable findings that cannot be sent (no line item or score)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


def _completion_times(session: Session, findings: list[m.Finding]) -> dict[tuple[str, str], datetime]:
    """completed_at of each finding's chosen completion, by (account_id, activity_id), one query per 500."""
    keys = sorted({(f.account_id, f.activity_id) for f in findings if f.account_id and f.activity_id})
    out: dict[tuple[str, str], datetime] = {}
    for i in range(0, len(keys), 500):
        chunk = keys[i:i + 500]
        rows = session.exec(select(m.Completion.account_id, m.Completion.activity_id, m.Completion.completed_at)
                            .where(tuple_(m.Completion.account_id, m.Completion.activity_id).in_(chunk))).all()
        out.update({(a, act): at for a, act, at in rows})
    return out


def completed_at_of(finding: m.Finding, completions: dict[tuple[str, str], datetime]) -> datetime | None:
    """The finding's completion time: `evidence["completed_at"]` when the diagnosis put it there, else
    the tool's completion record of (account_id, activity_id) — the chosen completion's account."""
    from_evidence = _parse_time((finding.evidence or {}).get("completed_at"))
    if from_evidence is not None:
        return from_evidence
    return completions.get((finding.account_id or "", finding.activity_id or ""))


def _open_tasks(session: Session, platforms: set[str]) -> dict[Key, m.ResyncTask]:
    if not platforms:
        return {}
    rows = session.exec(select(m.ResyncTask).where(
        m.ResyncTask.platform.in_(sorted(platforms)),
        m.ResyncTask.state.in_(list(m.OPEN_RESYNC_STATES)))).all()
    return {(t.platform, t.line_item_id, t.lms_user_id): t for t in rows}


def _audited_courses(session: Session, run_id: int) -> set[tuple[str, str]]:
    rows = session.exec(select(m.CourseAudit.platform, m.CourseAudit.context_id).where(
        m.CourseAudit.run_id == run_id, m.CourseAudit.status == "audited")).all()
    return {(p, c) for p, c in rows}


def _state_for(category: m.FindingCategory, current: m.ResyncState | None) -> m.ResyncState:
    """The state an open task should be in after this audit (current=None for a new task)."""
    if category.value in NEEDS_APPROVAL:
        # Only an explicit approval lets us overwrite a person's grade; an approval given stays.
        return m.ResyncState.approved if current is m.ResyncState.approved else m.ResyncState.needs_approval
    if current in (m.ResyncState.approved, m.ResyncState.sent):
        return current            # approved: a superset permission; sent: the next run re-checks it
    return m.ResyncState.pending


def queue_from_findings(session: Session, run_id: int, findings: list[m.Finding],
                        activities: set[str] | None = None) -> QueueCounts:
    """Create, update or cancel resync tasks from one audit run's stored findings (see module doc).
    `activities`: the run was narrowed to these (`audit --activity`): tasks of other activities are
    outside its scope and never cancelled by it. Runs inside the caller's session and transaction;
    flushes but does not commit."""
    counts = QueueCounts()
    now = m.utcnow()
    queued = [f for f in findings if f.category.value in QUEUED_CATEGORIES]
    completions = _completion_times(session, queued)
    audited = _audited_courses(session, run_id)
    platforms = {f.platform for f in findings} | {p for p, _ in audited}
    open_tasks = _open_tasks(session, platforms)
    seen: set[Key] = set()

    for f in queued:
        if not f.line_item_id or not f.lms_user_id or f.tool_score is None or not f.tool_maximum:
            counts.skipped += 1
            continue
        key = (f.platform, f.line_item_id, f.lms_user_id)
        if key in seen:
            continue
        seen.add(key)
        data = dict(identity=f.identity, context_id=f.context_id, resource_link_id=f.resource_link_id,
                    account_id=f.account_id, activity_id=f.activity_id, score_given=float(f.tool_score),
                    score_maximum=float(f.tool_maximum), completed_at=completed_at_of(f, completions),
                    category=f.category)
        task = open_tasks.get(key)
        if task is None:
            state = _state_for(f.category, None)
            session.add(m.ResyncTask(platform=f.platform, line_item_id=f.line_item_id, lms_user_id=f.lms_user_id,
                                     state=state, created_run_id=run_id, updated_run_id=run_id,
                                     created_at=now, updated_at=now, **data))
            counts.created += 1
            counts.needs_approval += state is m.ResyncState.needs_approval
            continue
        task.updated_run_id = run_id
        if task.state is m.ResyncState.claimed:
            counts.unchanged += 1          # a worker is sending it now; it decides the outcome
            continue
        state = _state_for(f.category, task.state)
        changed = state is not task.state or any(getattr(task, k) != v for k, v in data.items())
        for k, v in data.items():
            setattr(task, k, v)
        if changed:
            task.state = state
            task.updated_at = now
            counts.updated += 1
        else:
            counts.unchanged += 1
        counts.needs_approval += state is m.ResyncState.needs_approval

    for key, task in open_tasks.items():
        if key in seen or (task.platform, task.context_id) not in audited or task.state is m.ResyncState.claimed:
            continue
        if activities is not None and task.activity_id not in activities:
            continue   # outside an on-demand audit's scope: it proved nothing about this cell
        task.state = m.ResyncState.cancelled
        task.last_response = (f"cancelled by audit run {run_id}: no resyncable gap any more "
                              f"(the LMS shows the grade, or the cause changed)")
        task.updated_run_id = run_id
        task.updated_at = now
        counts.cancelled += 1
    session.flush()
    return counts
