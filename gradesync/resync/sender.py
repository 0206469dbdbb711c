"""Sending claimed tasks to one platform: read, decide, record, send, verify.

Per task (issue 6 "Resync" 2–4, issue 10 §1/§3):
1. read the LMS result first — if it already shows the tool's score the task is done without a send
   (this is also how a crash between send and record is recovered: the unsettled attempt "landed");
2. an unapproved task whose result now carries a person's grade is held for approval, not sent; so is
   one the platform would keep anyway (Canvas keeps any present grade under prioritize_non_tool_grade);
3. a fresh, strictly increasing timestamp is chosen and the attempt is committed *before* the POST;
   no student-visible comment is sent (a score's comment replaces the tool's own feedback, §4.1, §10);
4. after a 2xx the result is read back and judged by the vendor's landing rule (`landing`): `verified`
   only when it proves the tool's score landed, `failed:accepted_not_shown` at once when the platform
   shows another value (cap, late policy, override, a kept teacher grade), `sent` (re-checked next run)
   only when the read-back itself failed; a refusal reclassifies (see `refusal_change`).
The tasks of a line item go one at a time until one had a score accepted: if the item refuses as
inactive, its other tasks wait (item_blocked_at) instead of being POSTed blindly; a later run probes it.
One LtiClient per platform, capped at the slots of the key's LMS budget the caller holds; at most the
client's concurrency tasks are in progress at once.
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
from gradesync.resync.landing import (KEPT_BY_PERSON, SHOWN, UNCONFIRMABLE, LandingRule, describe,
                                      landing_rule)
from gradesync.resync.store import ACCEPTED_NOT_SHOWN, HELD_KEEPS_GRADE, Change, ClaimedTask, ResyncStore
from gradesync.resync.timestamps import fresh_timestamp, own_send, stored_time_from_refusal
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


_describe = describe


def _error_text(exc: LtiError) -> str:
    return str(exc)[:2000]


def _back_state(task: ClaimedTask) -> m.ResyncState:
    return S.approved if task.approved else S.pending


def refusal_change(task: ClaimedTask, exc: LtiError, attempt_no: int | None, settle: tuple[int, str] | None,
                   attempts: int, max_attempts: int, now: datetime, *, own_stale: bool = False) -> Change:
    """What a refused (or failed) read or send means for the task (docs/diagnosis-rules.md "Resync refusals").
    `own_stale`: a stale refusal against a time the platform stored from one of our own sends (two
    sends within its timestamp resolution, §4.3/§10) — retried, never taken for a person's edit."""
    kind, status, text = exc.kind, exc.status, _error_text(exc)
    evidence = {"refused_status": status, "refused_response": exc.message[:300], "refused_at": now.isoformat(),
                "task_id": task.id}
    base = dict(attempt_no=attempt_no, settle=settle, status=status, response=text, evidence=evidence)
    if kind is ErrorKind.item_inactive:
        # The item refuses: this task and its siblings wait for a probe (store.block_item), none closes.
        return Change(_back_state(task), "refused:item_inactive", refuse_item=True, **base)
    if kind is ErrorKind.not_learner:
        return Change(S.refused, "refused:not_learner", reclassify_to="not_learner", **base)
    if kind is ErrorKind.stale_timestamp and own_stale:
        return Change(_back_state(task), "retry:own_send_stale", next_attempt_at=now, **base)
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
                 transport: httpx.AsyncBaseTransport | None = None, clock: Callable[[], datetime] = m.utcnow,
                 in_flight: int | None = None) -> None:
        self.reg, self.store, self.run_id, self.max_attempts = registration, store, run_id, max_attempts
        self.transport, self.clock, self.in_flight = transport, clock, in_flight
        self.rule: LandingRule = landing_rule(registration.vendor)
        self.out = PlatformOutcome(registration.name)
        self._halt: str | None = None          # set when the platform itself stops working
        self._item_locks: dict[str, asyncio.Lock] = {}      # line item → one task at a time until open
        self._open_items: set[str] = set()                  # line items that accepted a score in this run
        self._refused_items: dict[str, str] = {}            # line item → why it refused (inactive)
        self._maxima: dict[str, asyncio.Task] = {}          # line-items container → {item id: max}

    async def run(self, tasks: list[ClaimedTask]) -> PlatformOutcome:
        """Handle every task (or hand it back unsent when its course / the platform is unreachable)."""
        async with LtiClient(self.reg, transport=self.transport, in_flight=self.in_flight) as lms:
            try:
                grant = await lms.score_grant()
                if grant.error is not None or not grant.has(SCOPE_SCORE):
                    detail = grant.error.message if grant.error else "the score scope was not granted"
                    self._halt = f"{self.reg.name}: cannot send scores: {detail}"
            except LtiError as exc:
                self._halt = f"{self.reg.name}: token endpoint unavailable: {exc}"
            pending = list(tasks)
            width = lms.in_flight_limit

            async def worker() -> None:
                while pending:
                    await self._gated(lms, pending.pop(0))

            await asyncio.gather(*(worker() for _ in range(min(width, len(tasks)))))
            self.out.request_stats = {"requests": dict(lms.stats.requests), "retries": lms.stats.retries,
                                      "throttled": lms.stats.throttled,
                                      "throttle_wait_s": round(lms.stats.throttle_wait_s, 3)}
        self.out.platform_error = self._halt
        return self.out

    async def _gated(self, lms: LtiClient, task: ClaimedTask) -> None:
        """Tasks of a line item go one at a time until one of them had a score accepted; if the item
        refuses as inactive meanwhile, the rest wait unsent (issue 10 §3: never POSTed blindly)."""
        item = task.line_item_id
        if item not in self._open_items:
            async with self._item_locks.setdefault(item, asyncio.Lock()):
                if item not in self._open_items:
                    await self._unless_refused(lms, task)
                    return
        await self._unless_refused(lms, task)

    async def _unless_refused(self, lms: LtiClient, task: ClaimedTask) -> None:
        refused = self._refused_items.get(task.line_item_id)
        if refused is not None:
            await asyncio.to_thread(self.store.wait_for_item, task.id,
                                    f"not sent: the line item refused a score as inactive in this run: {refused}")
            self.out.outcomes["waiting:item_inactive"] += 1
            return
        await self._one(lms, task)

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
        if change.refuse_item:
            self._refused_items[task.line_item_id] = (change.response or "")[:200]
        elif change.attempt_no is not None and change.status is None:
            self._open_items.add(task.line_item_id)        # a score was accepted (2xx): the item takes grades
        await asyncio.to_thread(self.store.apply, task.id, change)
        self.out.outcomes[change.outcome] += 1

    async def _result(self, lms: LtiClient, task: ClaimedTask) -> Result | None:
        results = await lms.list_results(task.line_item_id, user_id=task.lms_user_id)
        return next((r for r in results if r.user_id == task.lms_user_id), None)

    async def _item_maximum(self, lms: LtiClient, task: ClaimedTask) -> float | None:
        """The line item's scoreMaximum, from one listing of the course's line items per batch (None
        when no container URL is known or the item is not listed)."""
        container = task.lineitems_url or self.rule.container_of(task.line_item_id)
        if not container:
            return None
        job = self._maxima.get(container)
        if job is None:
            async def fetch() -> dict[str, float | None]:
                return {li.id: li.score_maximum for li in await lms.list_line_items(container)}
            job = self._maxima[container] = asyncio.ensure_future(fetch())
        return (await job).get(task.line_item_id)

    async def _stale_time(self, lms: LtiClient, task: ClaimedTask, exc: LtiError) -> datetime | None:
        """The time the platform stored for the cell, as a stale refusal shows it: quoted by Canvas
        (§4.2 check 6), else the result's `timestamp` read back (Moodle, §3.3, §10)."""
        quoted = stored_time_from_refusal(exc.message)
        if quoted is not None:
            return quoted
        try:
            now = await self._result(lms, task)
        except LtiError:
            return None
        return now.timestamp if now is not None else None

    async def _handle(self, lms: LtiClient, task: ClaimedTask) -> Change | None:
        now = self.clock()
        vendor = self.reg.vendor
        try:
            before = await self._result(lms, task)
            item_max = await self._item_maximum(lms, task) if self.rule.needs_item_maximum else None
        except LtiError as exc:
            return refusal_change(task, exc, None, None, task.attempts, self.max_attempts, now)
        sent_values = self.rule.sent_values(task.score_given, task.score_maximum, item_max)
        landed = shows_score(before, task)
        settle = (task.unsettled_attempt, "landed" if landed else "not_landed") if task.unsettled_attempt else None
        if landed:
            outcome = "verified_on_recheck" if settle else "already_in_lms"
            return Change(S.verified, outcome, settle=settle, response=f"the LMS shows {_describe(before)}")
        if task.unsettled_was_accepted:
            # The platform said 2xx and still shows another grade a run later (the read-back had
            # failed then): a resend would be ignored the same way. Stop and say so.
            verdict = self.rule.judge(before, task.normalised, sent_values, item_max)
            return Change(S.failed, ACCEPTED_NOT_SHOWN, settle=settle, response=verdict.note,
                          evidence=_not_shown_evidence(task, verdict, before))
        if not task.supersede and before is not None and before.result_score is not None and before.scoring_user_id:
            # Someone graded the cell since the audit (diagnosis-rules: a scoringUserId is a manual edit).
            return Change(S.needs_approval, "held:manual_grade", settle=settle, reclassify_to="manual_grade_conflict",
                          response=f"the LMS shows {_describe(before)} graded by {before.scoring_user_id}",
                          evidence={"scoring_user_id": before.scoring_user_id, "task_id": task.id})
        if not task.supersede and self.rule.keeps_present_grade and before is not None \
                and before.result_score is not None:
            # Canvas keeps any present submission score under prioritize_non_tool_grade (§4.2
            # submission_has_score?): the POST could not change the gradebook and would only overwrite
            # the Lti::Result the audit reads. Only an approved supersede can replace it.
            return Change(S.needs_approval, HELD_KEEPS_GRADE, settle=settle, response=self.rule.held_note(before))
        if task.attempts >= self.max_attempts and not task.item_blocked:
            return Change(S.failed, "failed:max_attempts", settle=settle,
                          response=f"gave up after {task.attempts} attempt(s); last: {task.last_response or ''}"[:2000])
        stored = before.timestamp if before is not None else None
        sent = list(task.sent_times)
        last_sent = task.cell_last_sent
        if own_send(stored, sent, vendor):
            last_sent = max(t for t in (last_sent, stored) if t is not None)    # our own earlier send: beat it
        body: dict | None = None
        for retry in (False, True):
            if task.supersede:
                quoted = stored_time_from_refusal(task.last_response)
                stored = max((t for t in (stored, quoted) if t is not None), default=None)
            timestamp = fresh_timestamp(self.clock(), vendor, last_sent=last_sent, stored_at=stored,
                                        supersede=task.supersede)
            attempt_no = await asyncio.to_thread(self.store.record_attempt, task.id, timestamp)
            if attempt_no is None:
                return None
            sent.append(timestamp)
            score = Score(user_id=task.lms_user_id, score_given=sent_values[0], score_maximum=sent_values[1],
                          timestamp=timestamp, submitted_at=task.completed_at, keep_non_tool_grade=not task.supersede)
            self.out.sends += 1
            try:
                body = await lms.post_score(task.line_item_id, score)
                break
            except LtiError as exc:
                stale = exc.kind is ErrorKind.stale_timestamp
                stored_now = await self._stale_time(lms, task, exc) if stale else None
                own = own_send(stored_now, sent, vendor)
                if retry or not stale or stored_now is None or not (own or task.supersede):
                    return refusal_change(task, exc, attempt_no, settle, task.attempts + 1, self.max_attempts,
                                          self.clock(), own_stale=own)
                # Refused as older than what the platform stored: our own send within its resolution
                # (§4.3, §10), or — for an approved supersede — the time of the grade it replaces. Send
                # once more, just after that time.
                await asyncio.to_thread(self.store.close_attempt, task.id, attempt_no, "refused:stale_timestamp",
                                        exc.status, _error_text(exc))
                task = replace(task, attempts=task.attempts + 1, last_timestamp_sent=timestamp,
                               last_response=_error_text(exc))
                last_sent = max(timestamp, stored_now) if own else timestamp
                stored = stored_now
        _crash_point()
        accepted = "accepted (2xx)" + (f": {json.dumps(body)[:500]}" if body else "")
        try:
            after = await self._result(lms, task)
        except LtiError as exc:
            return Change(S.sent, "sent", attempt_no=attempt_no, settle=settle, response=f"{accepted}; read-back failed: {exc}",
                          next_attempt_at=self.clock())
        verdict = self.rule.judge(after, task.normalised, sent_values, item_max)
        # Accepted and read back: the item takes grades again — its waiting tasks go out in this run.
        release = task.item_blocked
        if verdict.verdict == SHOWN:
            return Change(S.verified, "verified", attempt_no=attempt_no, settle=settle, release_item=release,
                          response=f"{accepted}; {verdict.note}")
        if verdict.verdict == UNCONFIRMABLE:
            return Change(S.failed, "failed:unconfirmable", attempt_no=attempt_no, settle=settle,
                          release_item=release, response=f"{accepted}; {verdict.note}")
        return Change(S.failed, ACCEPTED_NOT_SHOWN, attempt_no=attempt_no, settle=settle, release_item=release,
                      response=f"{accepted}; {verdict.note}", evidence=_not_shown_evidence(task, verdict, after))


def _not_shown_evidence(task: ClaimedTask, verdict, shown: Result | None) -> dict[str, Any]:
    """What a finding says about a send the platform accepted and did not apply (queue.py reads it)."""
    return {"task_id": task.id, "outcome": ACCEPTED_NOT_SHOWN, "supersede": task.supersede,
            "kept_by_person": verdict.verdict == KEPT_BY_PERSON, "platform_shows": _describe(shown),
            "tool_score": f"{task.score_given:g}/{task.score_maximum:g}", "note": verdict.note[:300]}
