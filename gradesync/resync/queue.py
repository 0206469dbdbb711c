"""The resync queue: one open task per (platform, line item, learner), kept in step with each audit.

`queue_from_findings` is called by the audit right after it stores a run's findings, in the same
session (so the run's `course_audit` rows are visible). Rules (issue 6 "Resync" 1):
- `missing_in_lms` / `score_mismatch` → a `pending` task; `manual_grade_conflict` → `needs_approval`
  (an approval already given is kept);
- a later audit updates the open task (scores, category, identity, updated_run_id), never adds a second;
- an open task whose cell has no resyncable finding any more, in a course this run *audited*, is
  `cancelled`: the gap closed by itself or changed cause. Courses left unverified keep their tasks.
- a task a worker holds right now (`claimed`) is only stamped with the run; the worker owns its state.
Issue 10 §1/§3:
- a cell whose last task ended `failed:accepted_not_shown` (the platform took the score and kept
  another grade) is not queued again for the same score: its finding gets `evidence["resync"]` saying a
  send (an approved supersede or not) was tried and ignored; `gradesync resync approve` re-opens it
  (plan.approve) when no supersede was tried yet;
- a task the sender held because the platform keeps a present grade (`held:platform_keeps_grade`,
  Canvas) stays in needs_approval while its gap stays;
- `item_not_active` for a line item: its open tasks wait (`item_blocked_at`) and are kept, not
  cancelled, while the item is reported inactive; the resync probes the item once per run. The
  finding may list the item's blocked gaps in `evidence["blocked_gaps"]` (a list of {lms_user_id,
  account_id, tool_score, tool_maximum, completed_at, category?}); each becomes a waiting task.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import tuple_
from sqlmodel import Session, select

import models as m
from gradesync.diagnosis.expected import TOLERANCE
from gradesync.findings import NEEDS_APPROVAL, RESYNCABLE, identity_of
from gradesync.resync.store import ACCEPTED_NOT_SHOWN, HELD_KEEPS_GRADE


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
    kept_refused: int = 0       # not queued again: the platform accepted and ignored the same score
    waiting: int = 0            # kept open while their line item is reported inactive

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
                            .where(tuple_(m.Completion.account_id, m.Completion.activity_id).in_(chunk),
                                   m.Completion.retired_at.is_(None))).all()
        for a, act, at in rows:     # several launch contexts: the latest (the diagnosis's own choice is in evidence)
            if (a, act) not in out or at > out[(a, act)]:
                out[(a, act)] = at
    return out


def completed_at_of(finding: m.Finding, completions: dict[tuple[str, str], datetime]) -> datetime | None:
    """The finding's completion time: `evidence["completed_at"]` when the diagnosis put it there, else
    the tool's completion record of (account_id, activity_id) — the chosen completion's account."""
    from_evidence = _parse_time((finding.evidence or {}).get("completed_at"))
    if from_evidence is not None:
        return from_evidence
    return completions.get((finding.account_id or "", finding.activity_id or ""))


def _open_tasks(session: Session, platforms: set[str],
                courses: set[tuple[str, str]] | None = None) -> dict[Key, m.ResyncTask]:
    if not platforms:
        return {}
    q = select(m.ResyncTask).where(m.ResyncTask.platform.in_(sorted(platforms)),
                                   m.ResyncTask.state.in_(list(m.OPEN_RESYNC_STATES)))
    # a batch reads the open tasks of its own courses only
    return {(t.platform, t.line_item_id, t.lms_user_id): t for t in _by_courses(session, q, courses)}


def _audited_courses(session: Session, run_id: int) -> set[tuple[str, str]]:
    rows = session.exec(select(m.CourseAudit.platform, m.CourseAudit.context_id).where(
        m.CourseAudit.run_id == run_id, m.CourseAudit.status == "audited")).all()
    return {(p, c) for p, c in rows}


def _state_for(category: m.FindingCategory, current: m.ResyncTask | None) -> m.ResyncState:
    """The state an open task should be in after this audit (current=None for a new task)."""
    state = current.state if current is not None else None
    if category.value in NEEDS_APPROVAL:
        # Only an explicit approval lets us overwrite a person's grade; an approval given stays.
        return m.ResyncState.approved if state is m.ResyncState.approved else m.ResyncState.needs_approval
    if state is m.ResyncState.needs_approval and current.last_outcome == HELD_KEEPS_GRADE:
        return state              # the platform keeps its grade unless a supersede is approved
    if state in (m.ResyncState.approved, m.ResyncState.sent):
        return state              # approved: a superset permission; sent: the next run re-checks it
    return m.ResyncState.pending


def _blocked_items(findings: list[m.Finding]) -> set[tuple[str, str]]:
    return {(f.platform, f.line_item_id) for f in findings
            if f.category is m.FindingCategory.item_not_active and f.line_item_id}


def _blocked_gap_rows(findings: list[m.Finding]) -> list[m.Finding]:
    """Transient learner findings for the gaps an `item_not_active` finding lists (never stored)."""
    out = []
    for f in findings:
        if f.category is not m.FindingCategory.item_not_active or not f.line_item_id:
            continue
        for gap in (f.evidence or {}).get("blocked_gaps") or []:
            if not isinstance(gap, dict) or not gap.get("lms_user_id"):
                continue
            category = gap.get("category") or "missing_in_lms"
            if category not in RESYNCABLE:
                continue
            out.append(m.Finding(
                run_id=f.run_id, identity=identity_of(category, f.platform, f.context_id, f.resource_link_id,
                                                      gap["lms_user_id"]),
                category=m.FindingCategory(category), level="learner", platform=f.platform,
                context_id=f.context_id, resource_link_id=f.resource_link_id, activity_id=f.activity_id,
                line_item_id=f.line_item_id, account_id=gap.get("account_id"), lms_user_id=gap["lms_user_id"],
                tool_score=gap.get("tool_score"), tool_maximum=gap.get("tool_maximum"),
                evidence={"completed_at": gap.get("completed_at")}, action=""))
    return out


def _refused_sends(session: Session, platforms: set[str],
                   courses: set[tuple[str, str]] | None = None) -> dict[Key, m.ResyncTask]:
    """The latest `failed:accepted_not_shown` task of each cell (a later task of the cell is checked by
    the caller); of `courses` only when given (one audit batch's)."""
    if not platforms:
        return {}
    q = select(m.ResyncTask).where(m.ResyncTask.platform.in_(sorted(platforms)),
                                   m.ResyncTask.last_outcome == ACCEPTED_NOT_SHOWN).order_by(m.ResyncTask.id)
    return {(t.platform, t.line_item_id, t.lms_user_id): t for t in _by_courses(session, q, courses)}


def _by_courses(session: Session, q, courses: set[tuple[str, str]] | None) -> list[m.ResyncTask]:
    """Rows of a ResyncTask query, narrowed to `courses` (chunked IN lists) when given."""
    if courses is None:
        return list(session.exec(q).all())
    rows: list[m.ResyncTask] = []
    for p in sorted({p for p, _ in courses}):
        ctxs = sorted(c for q_p, c in courses if q_p == p)
        for i in range(0, len(ctxs), 2_000):
            rows += session.exec(q.where(m.ResyncTask.platform == p,
                                         m.ResyncTask.context_id.in_(ctxs[i:i + 2_000]))).all()
    return rows


def _still_refused(session: Session, refused: m.ResyncTask | None, f: m.Finding) -> bool:
    """The cell's last task was a send the platform accepted and did not apply, for this same score."""
    if refused is None or abs(refused.score_given / refused.score_maximum
                              - float(f.tool_score) / float(f.tool_maximum)) > TOLERANCE:
        return False
    later = session.exec(select(m.ResyncTask.id).where(
        m.ResyncTask.platform == refused.platform, m.ResyncTask.line_item_id == refused.line_item_id,
        m.ResyncTask.lms_user_id == refused.lms_user_id, m.ResyncTask.id > refused.id)).first()
    return later is None


def refused_evidence(task: m.ResyncTask) -> dict[str, Any]:
    """What a finding says about its cell's last send, which the platform accepted and did not apply."""
    supersede = task.approved_at is not None
    return {"task_id": task.id, "outcome": ACCEPTED_NOT_SHOWN, "supersede_tried": supersede,
            "approved_by": task.approved_by, "tried_at": task.updated_at.isoformat() if task.updated_at else None,
            "platform_said": (task.last_response or "")[:300],
            "note": ("an approved supersede was sent and accepted, but the platform kept its grade: change it "
                     "in the LMS (clear the override or lock); not queued again"
                     if supersede else
                     "a resync was sent and accepted, but the platform kept another grade: not queued again; "
                     "approve a supersede (gradesync resync approve) to replace it, or change it in the LMS")}


def queue_from_findings(session: Session, run_id: int, findings: list[m.Finding],
                        activities: set[str] | None = None,
                        courses: set[tuple[str, str]] | None = None) -> QueueCounts:
    """Create, update or cancel resync tasks from one audit run's stored findings (see module doc).
    `activities`: the run was narrowed to these (`audit --activity`): tasks of other activities are
    outside its scope and never cancelled by it. Runs inside the caller's session and transaction;
    flushes but does not commit. `courses`: only these courses of the run (one audit batch's)."""
    counts = QueueCounts()
    now = m.utcnow()
    blocked_items = _blocked_items(findings)
    queued = [f for f in findings if f.category.value in QUEUED_CATEGORIES] + _blocked_gap_rows(findings)
    completions = _completion_times(session, queued)
    audited = _audited_courses(session, run_id)
    if courses is not None:
        audited &= courses
    platforms = {f.platform for f in findings} | {p for p, _ in audited}
    open_tasks = _open_tasks(session, platforms, courses)
    refused = _refused_sends(session, platforms, courses)
    seen: set[Key] = set()

    for f in queued:
        if not f.line_item_id or not f.lms_user_id or f.tool_score is None or not f.tool_maximum:
            counts.skipped += 1
            continue
        key = (f.platform, f.line_item_id, f.lms_user_id)
        if key in seen:
            continue
        seen.add(key)
        blocked = (f.platform, f.line_item_id) in blocked_items
        data = dict(identity=f.identity, context_id=f.context_id, resource_link_id=f.resource_link_id,
                    account_id=f.account_id, activity_id=f.activity_id, score_given=float(f.tool_score),
                    score_maximum=float(f.tool_maximum), completed_at=completed_at_of(f, completions),
                    category=f.category)
        task = open_tasks.get(key)
        if task is None and _still_refused(session, refused.get(key), f):
            if f.id is not None:           # a stored finding (not a blocked gap): say what was tried
                f.evidence = {**(f.evidence or {}), "resync": refused_evidence(refused[key])}
            counts.kept_refused += 1
            continue
        if task is None:
            state = _state_for(f.category, None)
            session.add(m.ResyncTask(platform=f.platform, line_item_id=f.line_item_id, lms_user_id=f.lms_user_id,
                                     state=state, created_run_id=run_id, updated_run_id=run_id,
                                     created_at=now, updated_at=now, item_blocked_at=now if blocked else None,
                                     **data))
            counts.created += 1
            counts.needs_approval += state is m.ResyncState.needs_approval
            continue
        task.updated_run_id = run_id
        if task.state is m.ResyncState.claimed:
            counts.unchanged += 1          # a worker is sending it now; it decides the outcome
            continue
        state = _state_for(f.category, task)
        changed = state is not task.state or any(getattr(task, k) != v for k, v in data.items())
        for k, v in data.items():
            setattr(task, k, v)
        if blocked and task.item_blocked_at is None:
            task.item_blocked_at, changed = now, True
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
        if (task.platform, task.line_item_id) in blocked_items:
            # The item is reported inactive (its learner findings give way to the item's): the task
            # waits for the item's probe instead of being cancelled.
            task.item_blocked_at = task.item_blocked_at or now
            task.updated_run_id = run_id
            counts.waiting += 1
            continue
        task.state = m.ResyncState.cancelled
        task.last_response = (f"cancelled by audit run {run_id}: no resyncable gap any more "
                              f"(the LMS shows the grade, or the cause changed)")
        task.updated_run_id = run_id
        task.updated_at = now
        counts.cancelled += 1
    session.flush()
    return counts
