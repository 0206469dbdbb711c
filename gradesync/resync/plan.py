"""What the `gradesync resync` CLI reads and changes: the queue by state, and approvals of supersedes."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, or_
from sqlmodel import select

import models as m
from gradesync.resync.store import ACCEPTED_NOT_SHOWN, HELD_KEEPS_GRADE

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
    reason: str                         # why it waits, in words (the finding's evidence, else the last answer)
    # What an approval would overwrite: the LMS score and since when (the latest audit's snapshot).
    lms_score: str = "—"
    lms_since: datetime | None = None
    learner: str = ""                   # name <email> from the tool's accounts, else ""
    course: str = ""                    # the course title, else ""
    activity: str = ""                  # the activity (link) title, else ""


def awaiting_approval(database_url: str, platforms: list[str] | None = None, limit: int = 50) -> list[WaitingRow]:
    """Tasks in needs_approval, with the id of the finding to approve (from the run that last saw it),
    what the LMS shows now and since when, the tool's score, and why a person's grade is suspected."""
    from gradesync.report.evidence import ScoreContext, evidence_in_words

    with m.session_scope(m.make_engine(database_url)) as s:
        q = select(m.ResyncTask).where(m.ResyncTask.state == S.needs_approval).order_by(m.ResyncTask.id).limit(limit)
        if platforms:
            q = q.where(m.ResyncTask.platform.in_(platforms))
        out = []
        for t in s.exec(q):
            f = s.exec(select(m.Finding).where(m.Finding.run_id == t.updated_run_id,
                                               m.Finding.identity == t.identity)).first()
            r = s.exec(select(m.LmsResult).where(m.LmsResult.run_id == t.updated_run_id,
                                                 m.LmsResult.platform == t.platform,
                                                 m.LmsResult.line_item_id == t.line_item_id,
                                                 m.LmsResult.user_id == t.lms_user_id)).first()
            lms_score = r.result_score if r and r.result_score is not None else (f.lms_score if f else None)
            lms_max = (r.result_maximum if r and r.result_score is not None else (f.lms_maximum if f else None))
            since = r.timestamp if r else None
            reason = (t.last_response or "")[:200]
            if f is not None:
                reason = evidence_in_words(f.category.value, f.evidence, ScoreContext(
                    t.score_given, t.score_maximum, lms_score, lms_max, since, m.utcnow())).words
            account = s.get(m.Account, t.account_id) if t.account_id else None
            course = s.exec(select(m.Course.title).where(m.Course.platform == t.platform,
                                                         m.Course.context_id == t.context_id)).first()
            link = s.exec(select(m.Link.title).where(m.Link.platform == t.platform, m.Link.context_id == t.context_id,
                                                     m.Link.resource_link_id == t.resource_link_id)).first() \
                if t.resource_link_id else None
            who = " ".join(x for x in ((account.name, f"<{account.email}>" if account.email else None)
                                       if account else ()) if x)
            out.append(WaitingRow(t.id, f.id if f else None, t.platform, t.context_id, t.lms_user_id,
                                  f"{t.score_given:g}/{t.score_maximum:g}", reason,
                                  "—" if lms_score is None else (f"{lms_score:g}/{lms_max:g}" if lms_max else f"{lms_score:g}"),
                                  since, who, course or "", link or ""))
        return out


@dataclass(frozen=True)
class NotShownRow:
    """A score the platform accepted (2xx) that the LMS does not show when read back."""
    task_id: int
    platform: str
    context_id: str
    lms_user_id: str
    learner: str
    tool_score: str
    state: str
    response: str


def accepted_not_shown(database_url: str, since: datetime, platforms: list[str] | None = None) -> list[NotShownRow]:
    """Tasks whose attempts since `since` were accepted by the platform but not shown on read-back (still
    re-checked: state sent; or given up: failed:accepted_not_shown)."""
    with m.session_scope(m.make_engine(database_url)) as s:
        q = (select(m.ResyncAttempt, m.ResyncTask).join(m.ResyncTask, m.ResyncAttempt.task_id == m.ResyncTask.id)
             .where(m.ResyncAttempt.started_at >= since)
             .order_by(m.ResyncTask.id, m.ResyncAttempt.attempt_no))
        if platforms:
            q = q.where(m.ResyncTask.platform.in_(platforms))
        seen: dict[int, NotShownRow] = {}
        for a, t in s.exec(q):
            text = a.response or ""
            not_shown = (a.outcome == "failed:accepted_not_shown"
                         or (a.outcome == "sent" and "but the LMS shows" in text))
            if not not_shown:
                seen.pop(t.id, None)             # a later attempt of the same task showed it
                continue
            account = s.get(m.Account, t.account_id) if t.account_id else None
            seen[t.id] = NotShownRow(t.id, t.platform, t.context_id, t.lms_user_id,
                                     (account.name or account.email or "") if account else "",
                                     f"{t.score_given:g}/{t.score_maximum:g}", t.state.value, text[:300])
        return list(seen.values())


@dataclass
class Approval:
    """What `approve` did: task ids approved, ids already approved, and problems worded for the user."""
    approved: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _course_filter(course: str) -> tuple[str | None, str]:
    platform, sep, context_id = course.partition("/")
    return (platform, context_id) if sep else (None, course)


def _cell_tasks(s, f: m.Finding):
    return select(m.ResyncTask).where(m.ResyncTask.platform == f.platform, m.ResyncTask.line_item_id == f.line_item_id,
                                      m.ResyncTask.lms_user_id == f.lms_user_id)


def _reopen_refused(s, f: m.Finding, by: str, now, result: Approval) -> bool:
    """No open task: if the cell's last task was a send the platform accepted and kept another grade
    (and no supersede was tried yet), the approval re-opens it as a supersede. True when handled."""
    last = s.exec(_cell_tasks(s, f).order_by(m.ResyncTask.id.desc())).first()
    if last is None or last.last_outcome != ACCEPTED_NOT_SHOWN:
        return False
    if last.approved_at is not None:
        result.problems.append(f"finding {f.id}: a supersede was already tried (task {last.id}, approved by "
                               f"{last.approved_by}) and the platform kept its grade: change it in the LMS")
        return True
    last.state, last.approved_by, last.approved_at, last.updated_at = S.approved, by, now, now
    last.next_attempt_at, last.last_outcome = None, "reopened:approved"
    result.approved.append(last.id)
    return True


def approve(database_url: str, by: str, finding_ids: list[int] | None = None, *, course: str | None = None) -> Approval:
    """Approve the supersede of grades the LMS holds: the tasks of `finding_ids` (manual_grade_conflict
    findings, gaps whose send the platform holds back — Canvas keeps a present grade — or a cell whose
    last send was accepted and not applied), or every such task waiting in `course` (CONTEXT_ID or
    PLATFORM/CONTEXT_ID)."""
    result = Approval()
    now = m.utcnow()
    approvable = or_(m.ResyncTask.category == m.FindingCategory.manual_grade_conflict,
                     m.ResyncTask.last_outcome == HELD_KEEPS_GRADE)
    with m.session_scope(m.make_engine(database_url)) as s:
        tasks: list[m.ResyncTask] = []
        for fid in finding_ids or []:
            f = s.get(m.Finding, fid)
            if f is None:
                result.problems.append(f"finding {fid}: no such finding")
                continue
            task = s.exec(_cell_tasks(s, f).where(m.ResyncTask.state.in_(list(m.OPEN_RESYNC_STATES)))).first()
            if task is None:
                if not _reopen_refused(s, f, by, now, result):
                    result.problems.append(f"finding {fid}: no open resync task for it (closed, or not queued yet)")
                continue
            if f.category is not m.FindingCategory.manual_grade_conflict and task.last_outcome != HELD_KEEPS_GRADE:
                result.problems.append(f"finding {fid}: {f.category.value} needs no approval "
                                       f"(only manual_grade_conflict, or a grade the platform holds back)")
                continue
            tasks.append(task)
        if course:
            platform, context_id = _course_filter(course)
            q = select(m.ResyncTask).where(m.ResyncTask.context_id == context_id, approvable,
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
