"""Thin Prefect tasks around the resync's plain steps (gradesync.resync.runner).

Both are async: the flow's loop awaits them, and database work goes to a thread so the loop (and the
other platforms' sends) keep running. No Prefect retries on `send-platform`: a score POST is never
repeated blindly — the next run re-reads the LMS and decides (issue 6, exactly-once in effect)."""
from __future__ import annotations

import asyncio
import weakref
from contextlib import AsyncExitStack
from datetime import datetime

from prefect import task
from prefect.cache_policies import NO_CACHE

from gradesync.budget import Purpose, lms_slots
from gradesync.resync import runner
from gradesync.resync.sender import PlatformOutcome
from gradesync.resync.store import ClaimedTask
from lti_client.registration import PlatformRegistration

TASK = dict(cache_policy=NO_CACHE)


@task(name="claim-resync-batch", retries=2, retry_delay_seconds=1, **TASK)
async def claim_batch(database_url: str, worker: str, platforms: list[str], limit: int, due_before: datetime,
                      lease_s: float, exclude_courses: set[tuple[str, str]], first_batch: bool) -> list[ClaimedTask]:
    """Claim a batch of due tasks (and, first in a run, one probe per blocked line item). A database
    error before a commit claims nothing: safe to retry."""
    return await asyncio.to_thread(runner.claim_batch, database_url, worker, platforms, limit, due_before, lease_s,
                                   exclude_courses, first_batch)


@task(name="send-platform", **TASK)
async def send_platform(registration: PlatformRegistration, database_url: str, worker: str, run_id: int,
                        tasks: list[ClaimedTask], max_attempts: int, budget: Purpose,
                        reserved_share: float) -> PlatformOutcome:
    """Send one platform's share of the batch, holding slots of its key's LMS budget while it sends:
    no more than its tasks can use (one request in flight per task at most)."""
    async with AsyncExitStack() as held:
        async with _acquisition_turn():
            in_flight = await held.enter_async_context(
                lms_slots(registration, budget, share=reserved_share, want=len(tasks)))
        return await runner.send_platform(registration, database_url, worker, run_id, tasks, max_attempts,
                                          in_flight=in_flight)


_turns: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = weakref.WeakKeyDictionary()


def _acquisition_turn() -> asyncio.Lock:
    """The platforms of a batch ask for their keys' slots one after another (their sends then run in
    parallel): a Prefect server on SQLite answers two simultaneous slot writes with 503, and its client
    retries only after 2 s (measured: every two-platform `resync run` lost 2 s that way)."""
    loop = asyncio.get_running_loop()
    lock = _turns.get(loop)
    if lock is None:
        lock = _turns[loop] = asyncio.Lock()
    return lock
