"""Extract one course from the LMS through the LTI client: line items, their results (all, or the wanted
ones: gradesync/diagnosis/wanted.py), the roster."""
from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from lti_client import LtiClient, LtiError
from lti_client.read_access import SCOPE_NOT_GRANTED
from lti_client.types import ErrorKind, LineItem, LtiErrorInfo, Member, Result

from gradesync.diagnosis.inputs import CourseSnapshot
from gradesync.diagnosis.wanted import ResultsWanted

# Answers on ONE results URL that say nothing about the course: Moodle 5.1 answers a results URL it
# cannot serve with 404 + an HTML page (lti-platform-behavior.md §10), Canvas a deleted assignment with
# 404 and an empty body (§2.2); an unparsable page, a paging loop, a results scope the platform did not
# grant. The item is unverified; its course is still audited.
_ITEM_KINDS = frozenset({ErrorKind.malformed, ErrorKind.paging_loop, ErrorKind.unsafe_url, ErrorKind.other})


def item_level(err: LtiError) -> bool:
    """True when a results read failed for that line item only (see _ITEM_KINDS); 401/403/422 (the
    course), throttling and transient faults (retried as a course) are not."""
    info = err.info
    if info.status == 404 or info.kind in _ITEM_KINDS:
        return True
    return info.kind is ErrorKind.auth and info.error_type == SCOPE_NOT_GRANTED


async def _item_results(client: LtiClient, line_item_id: str) -> list[Result] | LtiErrorInfo:
    try:
        return await client.list_results(line_item_id)
    except LtiError as err:
        if item_level(err):
            return err.info
        raise


async def _read_results(client: LtiClient, items: list[LineItem]) -> dict[str, list[Result] | LtiErrorInfo]:
    async with asyncio.TaskGroup() as tg:
        tasks = {li.id: tg.create_task(_item_results(client, li.id)) for li in items}
    return {item_id: task.result() for item_id, task in tasks.items()}


async def extract_course(client: LtiClient, lineitems_url: str, memberships_url: str,
                         wanted: ResultsWanted | None = None) -> CourseSnapshot:
    """Read everything the diagnosis needs for one course. A line-items or memberships failure raises
    the first LtiError (sibling requests are cancelled by the TaskGroup, so a failed course stops
    spending the platform's request budget); a results failure of one line item (`item_level`) goes
    into `item_errors` and the other items are still read.
    `wanted` (None = every item): the line items whose results are read (gradesync/diagnosis/wanted.py);
    the others are listed in `results_not_read` (`read_rest` reads them when `rest_needed` says so)."""
    try:
        async with asyncio.TaskGroup() as tg:
            items_task = tg.create_task(client.list_line_items(lineitems_url))
            members_task = tg.create_task(client.list_members(memberships_url))
        line_items, members = items_task.result(), members_task.result()
        first = line_items if wanted is None else [li for li in line_items if wanted(li)]
        outcomes = await _read_results(client, first)
    except* LtiError as group:
        raise group.exceptions[0] from None
    return _snapshot(line_items, members, outcomes)


async def read_rest(client: LtiClient, snap: CourseSnapshot) -> CourseSnapshot:
    """The snapshot with the results of its not-read line items read too."""
    rest = [li for li in snap.line_items if li.id in snap.results_not_read]
    try:
        outcomes = await _read_results(client, rest)
    except* LtiError as group:
        raise group.exceptions[0] from None
    outcomes |= {item_id: rs for item_id, rs in snap.results.items()}
    outcomes |= {item_id: err for item_id, err in snap.item_errors.items()}
    return _snapshot(snap.line_items, snap.members, outcomes)


def _snapshot(line_items: list[LineItem], members: list[Member],
              outcomes: dict[str, list[Result] | LtiErrorInfo]) -> CourseSnapshot:
    results: dict[str, list[Result]] = {}
    item_errors: dict[str, LtiErrorInfo] = {}
    for li in line_items:
        outcome = outcomes.get(li.id)
        if isinstance(outcome, LtiErrorInfo):
            item_errors[li.id] = outcome
        elif outcome is not None:
            results[li.id] = outcome
    not_read = frozenset(li.id for li in line_items if li.id not in outcomes)
    return CourseSnapshot(line_items=line_items, results=results, members=members, item_errors=item_errors,
                          results_not_read=not_read)


log = logging.getLogger(__name__)
RETRYABLE = frozenset({ErrorKind.transient, ErrorKind.throttled, ErrorKind.malformed})
RETRY_DELAYS_S = (1.0, 3.0)
# Courses read at once, per request the client keeps in flight. A course asks in two waves (line items and
# roster, then its items' results), so two per slot keep a request waiting for every slot that frees;
# starting every course of a batch at once does not: 300 courses' first steps held the event loop ~100 ms
# before the 12th request went out (issue 13, an experiment on bench/extraction.py's world), while the first
# answers waited.
COURSES_PER_SLOT = 2


async def extract_courses(client: LtiClient, courses: list[tuple[str, str, str]],
                          wanted: dict[str, ResultsWanted] | None = None, label: str = "") -> dict[str, CourseSnapshot]:
    """Every course of `courses` ((context_id, lineitems_url, memberships_url)), each `with_retries`, at
    most COURSES_PER_SLOT × the client's in-flight limit at once; `wanted`: context_id → which line items'
    results to read (absent: all). Returns context_id → snapshot; a course that failed is *unverified*."""
    gate = asyncio.Semaphore(max(1, COURSES_PER_SLOT * client.in_flight_limit))

    async def one(ctx: str, lineitems_url: str, memberships_url: str) -> tuple[str, CourseSnapshot]:
        async with gate:
            return ctx, await with_retries(
                lambda: extract_course(client, lineitems_url, memberships_url, (wanted or {}).get(ctx)),
                f"{label}/{ctx}" if label else ctx)

    return dict(await asyncio.gather(*(one(*c) for c in courses)))


async def with_retries(read: Callable[[], Awaitable[CourseSnapshot]], label: str = "", *,
                       sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> CourseSnapshot:
    """A course's read, tried again (after 1 s, then 3 s, ± half) when it failed for a reason another try
    can fix — the client already retried each request; this is the second line for a course whose whole
    read failed transiently. A definite answer (404 concluded, 401, a paging loop) or the last failure is
    the course's failed snapshot (*unverified*), never an exception; the log file keeps why (`label`
    names the course there)."""
    for tries, delay in enumerate((*RETRY_DELAYS_S, None), start=1):
        try:
            return await read()
        except LtiError as e:
            if e.info.kind not in RETRYABLE or delay is None:
                log.warning("%s: read failed (try %d, not retried further): %s", label or "course", tries, e)
                return failed_snapshot(e)
        except Exception as e:          # a bug or a broken connection: the course is unverified, the batch goes on
            log.warning("%s: read failed: %s", label or "course", e, exc_info=True)
            return failed_snapshot(e)
        await sleep(delay * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


def failed_snapshot(err: BaseException) -> CourseSnapshot:
    """The snapshot of a course whose extraction failed for good: carries the error, no data."""
    if isinstance(err, LtiError):
        return CourseSnapshot(error=err.info)
    return CourseSnapshot(error=LtiErrorInfo(ErrorKind.transient, None, None,
                                             f"{type(err).__name__}: {err}"[:300], None))
