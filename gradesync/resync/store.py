"""The resync's database side: what a claimed task says, and every state change a send leads to.

Each change is its own short transaction, guarded by ownership (`state = claimed AND claimed_by =
worker`): a worker that lost its claim (lease expired, taken over) changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

import models as m
from gradesync.resync.reclassify import annotate_finding, block_item, reclassify_task, release_item

S = m.ResyncState
UNSETTLED = (None, "sent")          # an attempt whose landing nobody has confirmed
# Outcomes other modules read back (queue.py, plan.py): the platform accepted a send and kept another
# grade; the sender held a send the platform would not apply (Canvas keeps a present grade).
ACCEPTED_NOT_SHOWN = "failed:accepted_not_shown"
HELD_KEEPS_GRADE = "held:platform_keeps_grade"


@dataclass(frozen=True)
class ClaimedTask:
    """A claimed task as the sender needs it (a snapshot taken right after the claim)."""
    id: int
    platform: str
    context_id: str
    line_item_id: str
    lms_user_id: str
    score_given: float
    score_maximum: float
    completed_at: datetime | None
    category: str
    approved: bool                  # someone approved it (`gradesync resync approve`)
    supersede: bool                 # … and it overwrites a manual grade (manual_grade_conflict)
    attempts: int
    last_timestamp_sent: datetime | None
    last_response: str | None
    unsettled_attempt: int | None   # latest attempt that crashed mid-way or was 2xx but not yet seen
    unsettled_was_accepted: bool = False   # … and it was a 2xx (not a crash)
    sent_times: tuple[datetime, ...] = ()  # every timestamp we sent for this cell (any task of it)
    item_blocked: bool = False             # the line item refused as inactive: this send is its probe
    lineitems_url: str | None = None       # the course's line-items container (the item's maximum)

    @property
    def cell_last_sent(self) -> datetime | None:
        """The latest timestamp we ever sent for this (line item, learner)."""
        return max(self.sent_times, default=self.last_timestamp_sent)

    @property
    def normalised(self) -> float:
        return self.score_given / self.score_maximum


@dataclass
class Change:
    """What to write after handling a task: the new state, the attempt's conclusion, and so on."""
    state: m.ResyncState
    outcome: str                                 # recorded on the attempt, counted in the summary
    attempt_no: int | None = None                # the attempt this concludes (None: nothing was sent)
    settle: tuple[int, str] | None = None        # an earlier unsettled attempt and what it turned out to be
    status: int | None = None
    response: str | None = None
    next_attempt_at: datetime | None = None
    reclassify_to: str | None = None             # learner-level finding category
    refuse_item: bool = False                    # item_not_active: the line item refuses; its tasks wait
    release_item: bool = False                   # the item's probe landed: its waiting tasks go out
    evidence: dict[str, Any] = field(default_factory=dict)


def _close_attempt(s, task_id: int, attempt_no: int | None, outcome: str | None, status: int | None,
                   response: str | None, now: datetime) -> None:
    if attempt_no is None:
        return
    row = s.exec(select(m.ResyncAttempt).where(m.ResyncAttempt.task_id == task_id,
                                               m.ResyncAttempt.attempt_no == attempt_no)).first()
    if row is not None:
        row.outcome, row.finished_at = outcome, now
        if status is not None or response is not None:
            row.status_code, row.response = status, (response or "")[:4000] or None


class ResyncStore:
    """Database operations of one worker in one resync run."""

    def __init__(self, database_url: str, worker: str) -> None:
        self.engine = m.make_engine(database_url)
        self.worker = worker

    def _owned(self, s, task_id: int) -> m.ResyncTask | None:
        task = s.get(m.ResyncTask, task_id)
        if task is None or task.state is not S.claimed or task.claimed_by != self.worker:
            return None
        return task

    def load(self, ids: list[int]) -> list[ClaimedTask]:
        """Snapshots of the tasks this worker holds among `ids`."""
        out: list[ClaimedTask] = []
        containers: dict[tuple[str, str], str | None] = {}
        with m.session_scope(self.engine) as s:
            for task_id in ids:
                t = self._owned(s, task_id)
                if t is None:
                    continue
                last = s.exec(select(m.ResyncAttempt).where(m.ResyncAttempt.task_id == t.id)
                              .order_by(m.ResyncAttempt.attempt_no.desc())).first()
                unsettled = last.attempt_no if last is not None and last.outcome in UNSETTLED else None
                sent = s.exec(select(m.ResyncAttempt.timestamp_sent).join(
                    m.ResyncTask, m.ResyncAttempt.task_id == m.ResyncTask.id).where(
                    m.ResyncTask.platform == t.platform, m.ResyncTask.line_item_id == t.line_item_id,
                    m.ResyncTask.lms_user_id == t.lms_user_id)).all()
                course = (t.platform, t.context_id)
                if course not in containers:
                    containers[course] = s.exec(select(m.Course.lineitems_url).where(
                        m.Course.platform == t.platform, m.Course.context_id == t.context_id)).first()
                out.append(ClaimedTask(
                    id=t.id, platform=t.platform, context_id=t.context_id, line_item_id=t.line_item_id,
                    lms_user_id=t.lms_user_id, score_given=t.score_given, score_maximum=t.score_maximum,
                    completed_at=t.completed_at, category=t.category.value,
                    approved=t.approved_at is not None,
                    # Approvals are given only to supersede a grade the platform holds (a manual-grade
                    # conflict, or a grade Canvas keeps under prioritize_non_tool_grade): plan.approve.
                    supersede=t.approved_at is not None,
                    attempts=t.attempts, last_timestamp_sent=t.last_timestamp_sent, last_response=t.last_response,
                    unsettled_attempt=unsettled,
                    unsettled_was_accepted=unsettled is not None and last.outcome == "sent",
                    sent_times=tuple(sorted(sent)), item_blocked=t.item_blocked_at is not None,
                    lineitems_url=containers[course]))
        return out

    def record_attempt(self, task_id: int, timestamp: datetime) -> int | None:
        """Write the attempt (and the timestamp it will carry) before anything is sent; None if the
        claim was lost. Committed on return: a crash after the send leaves this trace behind."""
        with m.session_scope(self.engine) as s:
            task = self._owned(s, task_id)
            if task is None:
                return None
            last_no = s.exec(select(func.max(m.ResyncAttempt.attempt_no))
                             .where(m.ResyncAttempt.task_id == task_id)).one() or 0
            s.add(m.ResyncAttempt(task_id=task_id, attempt_no=last_no + 1, timestamp_sent=timestamp))
            task.attempts += 1
            task.last_timestamp_sent = timestamp
            task.updated_at = m.utcnow()
            return last_no + 1

    def apply(self, task_id: int, change: Change) -> list[int]:
        """Write `change` for a task this worker holds; returns the ids of the tasks it changed (more
        than one when a line item refuses, or its probe lands), [] if the claim was lost."""
        now = m.utcnow()
        with m.session_scope(self.engine) as s:
            task = self._owned(s, task_id)
            if task is None:
                return []
            settle_no, settle_outcome = change.settle or (None, None)
            _close_attempt(s, task_id, settle_no, settle_outcome, None, None, now)
            _close_attempt(s, task_id, change.attempt_no, change.outcome, change.status, change.response, now)
            if change.status is not None or change.response is not None:
                task.last_status, task.last_response = change.status, change.response
            task.next_attempt_at = change.next_attempt_at
            task.updated_at = now
            task.last_outcome = change.outcome[:40]
            task.state = change.state
            if change.refuse_item:
                return block_item(s, task, self.worker, change.evidence)
            if change.reclassify_to:
                reclassify_task(s, task, change.reclassify_to, change.evidence)
            elif change.evidence and change.state is S.failed:
                annotate_finding(s, task, change.evidence)      # e.g. accepted but not shown: say so
            if change.release_item:
                return release_item(s, task)
            return [task_id]

    def wait_for_item(self, task_id: int, reason: str) -> bool:
        """Hand a claimed task back unsent because its line item refused as inactive in this run: it
        waits (item_blocked_at) for the item's next probe."""
        with m.session_scope(self.engine) as s:
            task = self._owned(s, task_id)
            if task is None:
                return False
            task.state = S.approved if task.approved_at is not None else S.pending
            task.item_blocked_at = task.item_blocked_at or m.utcnow()
            task.next_attempt_at = None
            task.last_outcome = "waiting:item_inactive"
            task.last_response = reason
            task.updated_at = m.utcnow()
            return True

    def close_attempt(self, task_id: int, attempt_no: int, outcome: str, status: int | None,
                      response: str | None) -> bool:
        """Conclude one attempt without changing the task's state (a send about to be repeated)."""
        with m.session_scope(self.engine) as s:
            task = self._owned(s, task_id)
            if task is None:
                return False
            _close_attempt(s, task_id, attempt_no, outcome, status, response, m.utcnow())
            task.last_status, task.last_response = status, response
            return True

    def release(self, task_id: int, reason: str) -> bool:
        """Hand a claimed task back unsent (its course or platform could not be reached in this run)."""
        with m.session_scope(self.engine) as s:
            task = self._owned(s, task_id)
            if task is None:
                return False
            task.state = S.approved if task.approved_at is not None else S.pending
            task.next_attempt_at = m.utcnow()
            task.last_response = reason
            task.updated_at = m.utcnow()
            return True

    def course_unverified(self, run_id: int, platform: str, context_id: str, reason: str) -> None:
        """Record that the resync could not reach a course (a `course_audit` row of the resync run). Sends
        of one course run concurrently: when another one recorded it first, its row stands."""
        try:
            self._course_unverified(run_id, platform, context_id, reason)
        except IntegrityError:
            pass

    def _course_unverified(self, run_id: int, platform: str, context_id: str, reason: str) -> None:
        with m.session_scope(self.engine) as s:
            row = s.exec(select(m.CourseAudit).where(m.CourseAudit.run_id == run_id, m.CourseAudit.platform == platform,
                                                     m.CourseAudit.context_id == context_id)).first()
            if row is None:
                s.add(m.CourseAudit(run_id=run_id, platform=platform, context_id=context_id,
                                    status="unverified", reason=reason[:2000]))
