"""What the `gradesync resync` CLI reads and changes: the queue by state, and approvals of supersedes."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import select

import models as m

S = m.ResyncState


@dataclass(frozen=True)
class QueueRow:
    state: str
    platform: str
    category: str
    tasks: int


def open_queue(database_url: str, platforms: list[str] | None = None) -> list[QueueRow]:
    """Open tasks counted by (state, platform, category)."""
    with m.session_scope(m.make_engine(database_url)) as s:
        q = (select(m.ResyncTask.state, m.ResyncTask.platform, m.ResyncTask.category, func.count())
             .where(m.ResyncTask.state.in_(list(m.OPEN_RESYNC_STATES)))
             .group_by(m.ResyncTask.state, m.ResyncTask.platform, m.ResyncTask.category))
        if platforms:
            q = q.where(m.ResyncTask.platform.in_(platforms))
        rows = s.exec(q).all()
    order = {st: i for i, st in enumerate(m.OPEN_RESYNC_STATES)}
    return sorted((QueueRow(st.value, p, c.value, n) for st, p, c, n in rows),
                  key=lambda r: (order[S(r.state)], r.platform, r.category))


@dataclass(frozen=True)
class WaitingRow:
    task_id: int
    finding_id: int | None
    platform: str
    context_id: str
    lms_user_id: str
    tool_score: str
    reason: str


def awaiting_approval(database_url: str, platforms: list[str] | None = None, limit: int = 50) -> list[WaitingRow]:
    """Tasks in needs_approval, with the id of the finding to approve (from the run that last saw it)."""
    with m.session_scope(m.make_engine(database_url)) as s:
        q = select(m.ResyncTask).where(m.ResyncTask.state == S.needs_approval).order_by(m.ResyncTask.id).limit(limit)
        if platforms:
            q = q.where(m.ResyncTask.platform.in_(platforms))
        out = []
        for t in s.exec(q):
            f = s.exec(select(m.Finding.id).where(m.Finding.run_id == t.updated_run_id,
                                                  m.Finding.identity == t.identity)).first()
            out.append(WaitingRow(t.id, f, t.platform, t.context_id, t.lms_user_id,
                                  f"{t.score_given:g}/{t.score_maximum:g}", (t.last_response or "")[:80]))
        return out


@dataclass
class Approval:
    """What `approve` did: task ids approved, ids already approved, and problems worded for the user."""
    approved: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _course_filter(course: str) -> tuple[str | None, str]:
    platform, sep, context_id = course.partition("/")
    return (platform, context_id) if sep else (None, course)


def approve(database_url: str, by: str, finding_ids: list[int] | None = None, *, course: str | None = None) -> Approval:
    """Approve the supersede of manual grades: the tasks of `finding_ids` (manual_grade_conflict
    findings), or every conflict waiting in `course` (CONTEXT_ID or PLATFORM/CONTEXT_ID)."""
    result = Approval()
    now = m.utcnow()
    with m.session_scope(m.make_engine(database_url)) as s:
        tasks: list[m.ResyncTask] = []
        for fid in finding_ids or []:
            f = s.get(m.Finding, fid)
            if f is None:
                result.problems.append(f"finding {fid}: no such finding")
                continue
            if f.category is not m.FindingCategory.manual_grade_conflict:
                result.problems.append(f"finding {fid}: {f.category.value} needs no approval "
                                       f"(only manual_grade_conflict does)")
                continue
            task = s.exec(select(m.ResyncTask).where(
                m.ResyncTask.platform == f.platform, m.ResyncTask.line_item_id == f.line_item_id,
                m.ResyncTask.lms_user_id == f.lms_user_id,
                m.ResyncTask.state.in_(list(m.OPEN_RESYNC_STATES)))).first()
            if task is None:
                result.problems.append(f"finding {fid}: no open resync task for it (closed, or not queued yet)")
                continue
            tasks.append(task)
        if course:
            platform, context_id = _course_filter(course)
            q = select(m.ResyncTask).where(m.ResyncTask.context_id == context_id,
                                           m.ResyncTask.category == m.FindingCategory.manual_grade_conflict,
                                           m.ResyncTask.state.in_([S.needs_approval, S.approved]))
            if platform:
                q = q.where(m.ResyncTask.platform == platform)
            found = list(s.exec(q.order_by(m.ResyncTask.id)))
            if not found:
                result.problems.append(f"course {course}: no manual-grade conflicts waiting")
            tasks += found
        for task in {t.id: t for t in tasks}.values():
            if task.state is S.needs_approval:
                task.state, task.approved_by, task.approved_at, task.updated_at = S.approved, by, now, now
                task.next_attempt_at = None
                result.approved.append(task.id)
            elif task.approved_at is not None:
                result.already.append(task.id)
            else:
                result.problems.append(f"task {task.id}: is {task.state.value}, not waiting for approval")
    return result
