"""Sending claimed tasks to one platform: read, decide, record, send, verify.

Per task (issue 6 "Resync" 2–4):
1. read the LMS result first — if it already shows the tool's score the task is done without a send
   (this is also how a crash between send and record is recovered: the unsettled attempt "landed");
2. an unapproved task whose result now carries a person's grade is held for approval, not sent;
3. a fresh, strictly increasing timestamp is chosen and the attempt is committed *before* the POST;
4. after a 2xx the result is read back: `verified` only when the LMS shows the score, else `sent`
   (re-checked by the next run); a refusal reclassifies (see `refusal_change`).
One LtiClient per platform; at most the client's concurrency tasks are in progress at once.
"""
from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Callable

import httpx

import models as m
from gradesync.diagnosis.expected import TOLERANCE
from gradesync.resync.store import Change, ClaimedTask, ResyncStore
from gradesync.resync.timestamps import fresh_timestamp, stored_time_from_refusal
from lti_client import LtiClient
from lti_client.errors import LtiError
from lti_client.registration import PlatformRegistration
from lti_client.types import SCOPE_SCORE, ErrorKind, Result, Score

S = m.ResyncState
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=6)
# Fault injection for tests: "exit" ends the process right after a score POST returned and before its
# outcome is recorded (the crash the exactly-once design must survive); "raise" raises InjectedCrash.
CRASH_ENV = "GRADESYNC_RESYNC_CRASH_AFTER_SEND"


class InjectedCrash(RuntimeError):
    """Raised after a send when GRADESYNC_RESYNC_CRASH_AFTER_SEND=raise (tests only)."""


@dataclass
class PlatformOutcome:
    """What one platform's share of a resync batch came to."""
    platform: str
    outcomes: Counter = field(default_factory=Counter)     # per task: verified, sent, refused:…, …
    sends: int = 0                                          # score POSTs made
    unverified_courses: dict[str, str] = field(default_factory=dict)   # context_id → reason
    platform_error: str | None = None                       # the platform could not be used at all
    request_stats: dict[str, Any] = field(default_factory=dict)


def shows_score(result: Result | None, task: ClaimedTask) -> bool:
    """The LMS result shows the tool's score (normalised by the maxima, within 0.005)."""
    if result is None or result.result_score is None:
        return False
    return abs(result.result_score / (result.result_maximum or 1.0) - task.normalised) <= TOLERANCE


def backoff_until(attempts: int, now: datetime) -> datetime:
    """When to try again after `attempts` sends: 1, 2, 4 … minutes, at most 6 hours."""
    step = BACKOFF_BASE * (2 ** max(attempts - 1, 0))
    return now + min(step, BACKOFF_CAP)


def _describe(result: Result | None) -> str:
    if result is None or result.result_score is None:
        return "no score"
    return f"{result.result_score:g}/{result.result_maximum:g}"


def _error_text(exc: LtiError) -> str:
    return str(exc)[:2000]


def _back_state(task: ClaimedTask) -> m.ResyncState:
    return S.approved if task.approved else S.pending


def refusal_change(task: ClaimedTask, exc: LtiError, attempt_no: int | None, settle: tuple[int, str] | None,
                   attempts: int, max_attempts: int, now: datetime) -> Change:
    """What a refused (or failed) read or send means for the task (docs/diagnosis-rules.md "Resync refusals")."""
    kind, status, text = exc.kind, exc.status, _error_text(exc)
    evidence = {"refused_status": status, "refused_response": exc.message[:300], "refused_at": now.isoformat(),
                "task_id": task.id}
    base = dict(attempt_no=attempt_no, settle=settle, status=status, response=text, evidence=evidence)
    if kind is ErrorKind.item_inactive:
        return Change(S.refused, "refused:item_inactive", refuse_item=True, **base)
    if kind is ErrorKind.not_learner:
        return Change(S.refused, "refused:not_learner", reclassify_to="not_learner", **base)
    if kind is ErrorKind.stale_timestamp and not task.supersede:
        # The platform holds a later grade than ours: a person's edit — overwrite only if approved.
        return Change(S.needs_approval, "refused:stale_timestamp", reclassify_to="manual_grade_conflict", **base)
    if kind is ErrorKind.unsafe_url:
        return Change(S.failed, "failed:unsafe_url", **base)
    outcome = f"retry:{kind.value}"
    if attempt_no is not None and attempts >= max_attempts:
        return Change(S.failed, f"failed:{kind.value}", **base)
    # throttled, transient, course_unreachable, auth, stale on an approved supersede (the next send
    # beats the stored time the refusal quoted), anything else: try again later.
    return Change(_back_state(task), outcome, next_attempt_at=backoff_until(max(attempts, 1), now), **base)


def _crash_point() -> None:
    mode = os.environ.get(CRASH_ENV)
    if mode == "exit":
        os._exit(86)
    if mode == "raise":
        raise InjectedCrash("injected crash between send and record")


class PlatformSender:
    """Sends one platform's claimed tasks through one LtiClient."""

    def __init__(self, registration: PlatformRegistration, store: ResyncStore, run_id: int, max_attempts: int, *,
                 transport: httpx.AsyncBaseTransport | None = None, clock: Callable[[], datetime] = m.utcnow) -> None:
        self.reg, self.store, self.run_id, self.max_attempts = registration, store, run_id, max_attempts
        self.transport, self.clock = transport, clock
        self.out = PlatformOutcome(registration.name)
        self._halt: str | None = None          # set when the platform itself stops working

    async def run(self, tasks: list[ClaimedTask]) -> PlatformOutcome:
        """Handle every task (or hand it back unsent when its course / the platform is unreachable)."""
        async with LtiClient(self.reg, transport=self.transport) as lms:
            try:
                grant = await lms.score_grant()
                if grant.error is not None or not grant.has(SCOPE_SCORE):
                    detail = grant.error.message if grant.error else "the score scope was not granted"
                    self._halt = f"{self.reg.name}: cannot send scores: {detail}"
            except LtiError as exc:
                self._halt = f"{self.reg.name}: token endpoint unavailable: {exc}"
            pending = list(tasks)
            width = max(1, self.reg.max_concurrency or lms.profile.default_concurrency)

            async def worker() -> None:
                while pending:
                    await self._one(lms, pending.pop(0))

            await asyncio.gather(*(worker() for _ in range(min(width, len(tasks)))))
            self.out.request_stats = {"requests": dict(lms.stats.requests), "retries": lms.stats.retries,
                                      "throttled": lms.stats.throttled,
                                      "throttle_wait_s": round(lms.stats.throttle_wait_s, 3)}
        self.out.platform_error = self._halt
        return self.out

    async def _one(self, lms: LtiClient, task: ClaimedTask) -> None:
        skip = self._halt or self.out.unverified_courses.get(task.context_id)
        if skip:
            await asyncio.to_thread(self.store.release, task.id, f"not sent in this run: {skip}")
            self.out.outcomes["skipped"] += 1
            return
        change = await self._handle(lms, task)
        if change is None:
            self.out.outcomes["claim_lost"] += 1
            return
        if change.outcome.endswith(ErrorKind.course_unreachable.value):
            reason = f"resync: {change.response}"
            self.out.unverified_courses.setdefault(task.context_id, reason)
            await asyncio.to_thread(self.store.course_unverified, self.run_id, task.platform, task.context_id, reason)
        if change.outcome.endswith(ErrorKind.auth.value):
            self._halt = f"{self.reg.name}: token refused: {change.response}"
        closed = await asyncio.to_thread(self.store.apply, task.id, change)
        self.out.outcomes[change.outcome] += 1
        if change.refuse_item:
            self.out.outcomes["refused:item_inactive (same line item)"] += max(0, len(closed) - 1)

    async def _result(self, lms: LtiClient, task: ClaimedTask) -> Result | None:
        results = await lms.list_results(task.line_item_id, user_id=task.lms_user_id)
        return next((r for r in results if r.user_id == task.lms_user_id), None)

    async def _handle(self, lms: LtiClient, task: ClaimedTask) -> Change | None:
        now = self.clock()
        try:
            before = await self._result(lms, task)
        except LtiError as exc:
            return refusal_change(task, exc, None, None, task.attempts, self.max_attempts, now)
        landed = shows_score(before, task)
        settle = (task.unsettled_attempt, "landed" if landed else "not_landed") if task.unsettled_attempt else None
        if landed:
            outcome = "verified_on_recheck" if settle else "already_in_lms"
            return Change(S.verified, outcome, settle=settle, response=f"the LMS shows {_describe(before)}")
        if task.unsettled_was_accepted:
            # The platform said 2xx and still shows another grade a run later: a resend would be
            # ignored the same way (a Moodle teacher override keeps the final grade, §4.3; a platform may
            # drop a score it deems stale with a 2xx, §4.1). Stop and say so instead of re-posting.
            return Change(S.failed, "failed:accepted_not_shown", settle=settle,
                          response=f"the platform accepted the score but still shows {_describe(before)}: "
                                   "a gradebook override or lock keeps another grade; clear it in the LMS")
        if not task.supersede and before is not None and before.result_score is not None and before.scoring_user_id:
            # Someone graded the cell since the audit (diagnosis-rules: a scoringUserId is a manual edit).
            return Change(S.needs_approval, "held:manual_grade", settle=settle, reclassify_to="manual_grade_conflict",
                          response=f"the LMS shows {_describe(before)} graded by {before.scoring_user_id}",
                          evidence={"scoring_user_id": before.scoring_user_id, "task_id": task.id})
        if task.attempts >= self.max_attempts:
            return Change(S.failed, "failed:max_attempts", settle=settle,
                          response=f"gave up after {task.attempts} attempt(s); last: {task.last_response or ''}"[:2000])
        stored = before.timestamp if before is not None else None
        body: dict | None = None
        for retry in (False, True):
            if task.supersede:
                quoted = stored_time_from_refusal(task.last_response)
                stored = max((t for t in (stored, quoted) if t is not None), default=None)
            timestamp = fresh_timestamp(self.clock(), self.reg.vendor, last_sent=task.last_timestamp_sent,
                                        stored_at=stored, supersede=task.supersede)
            attempt_no = await asyncio.to_thread(self.store.record_attempt, task.id, timestamp)
            if attempt_no is None:
                return None
            score = Score(user_id=task.lms_user_id, score_given=task.score_given, score_maximum=task.score_maximum,
                          timestamp=timestamp, submitted_at=task.completed_at,
                          comment=f"Resynced by gradesync (task {task.id})")
            self.out.sends += 1
            try:
                body = await lms.post_score(task.line_item_id, score)
                break
            except LtiError as exc:
                quoted_now = stored_time_from_refusal(exc.message)
                if retry or not task.supersede or exc.kind is not ErrorKind.stale_timestamp or quoted_now is None:
                    return refusal_change(task, exc, attempt_no, settle, task.attempts + 1, self.max_attempts,
                                          self.clock())
                # An approved supersede refused as stale (Canvas quotes the stored time it lost to,
                # §4.2 check 6): send once more, just after that time.
                await asyncio.to_thread(self.store.close_attempt, task.id, attempt_no, "refused:stale_timestamp",
                                        exc.status, _error_text(exc))
                task = replace(task, attempts=task.attempts + 1, last_timestamp_sent=timestamp,
                               last_response=_error_text(exc))
        _crash_point()
        accepted = "accepted (2xx)" + (f": {json.dumps(body)[:500]}" if body else "")
        try:
            after = await self._result(lms, task)
        except LtiError as exc:
            return Change(S.sent, "sent", attempt_no=attempt_no, settle=settle, response=f"{accepted}; read-back failed: {exc}",
                          next_attempt_at=self.clock())
        if shows_score(after, task):
            return Change(S.verified, "verified", attempt_no=attempt_no, settle=settle,
                          response=f"{accepted}; the LMS shows {_describe(after)}")
        return Change(S.sent, "sent", attempt_no=attempt_no, settle=settle, next_attempt_at=self.clock(),
                      response=f"{accepted} but the LMS shows {_describe(after)}; re-checked by the next run")
