"""Extraction tasks: score grant and per-course LMS reads, with retries for transient faults.

The client already retries single requests (backoff, Retry-After); the task retry is the second line
for a course whose whole read failed transiently. What still fails is returned as a failed snapshot
(course *unverified*), never raised into the flow.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from prefect import task
from prefect.cache_policies import NO_CACHE

from gradesync.audit.extract import extract_course, failed_snapshot, read_rest
from gradesync.audit.records import ToolRecords
from gradesync.diagnosis.wanted import rest_needed
from gradesync.diagnosis.inputs import CourseSnapshot, ScoreGrant
from lti_client import LtiClient, LtiError
from lti_client.types import SCOPE_SCORE, ErrorKind

RETRYABLE = {ErrorKind.transient, ErrorKind.throttled, ErrorKind.malformed}


def _transient(task, task_run, state) -> bool:
    """Retry a task only for faults that another try can fix (never 4xx, never a paging loop)."""
    # _sync: inside an async task run, State.result would otherwise hand back a coroutine.
    err = state.result(raise_on_failure=False, _sync=True)
    return isinstance(err, LtiError) and err.info.kind in RETRYABLE


@task(name="extract-course", task_run_name="extract-{platform}-{context_id}", retries=2,
      retry_delay_seconds=[1, 3], retry_jitter_factor=0.5, retry_condition_fn=_transient, cache_policy=NO_CACHE)
async def extract_course_task(client: LtiClient, platform: str, context_id: str, lineitems_url: str,
                              memberships_url: str, wanted=None) -> CourseSnapshot:
    try:
        return await extract_course(client, lineitems_url, memberships_url, wanted)
    except LtiError as e:
        if e.info.kind in RETRYABLE:
            raise            # the task's retries may fix it
        # A definite answer (404 concluded, 401 tool removed, paging loop): a result, not a task failure.
        return failed_snapshot(e)


@task(name="score-grant", task_run_name="score-grant-{platform}", retries=2, retry_delay_seconds=[1, 3],
      retry_condition_fn=_transient, cache_policy=NO_CACHE)
async def score_grant_task(client: LtiClient, platform: str) -> ScoreGrant:
    return ScoreGrant.from_token_grant(await client.score_grant(), SCOPE_SCORE)


@task(name="read-rest", task_run_name="read-rest-{platform}-{context_id}", retries=2, retry_delay_seconds=[1, 3],
      retry_jitter_factor=0.5, retry_condition_fn=_transient, cache_policy=NO_CACHE)
async def read_rest_task(client: LtiClient, platform: str, context_id: str, snap: CourseSnapshot) -> CourseSnapshot:
    try:
        return await read_rest(client, snap)
    except LtiError as e:
        if e.info.kind in RETRYABLE:
            raise
        return failed_snapshot(e)


@dataclass
class PlatformExtraction:
    grant: ScoreGrant
    snapshots: dict[str, CourseSnapshot] = field(default_factory=dict)   # context_id → snapshot


async def extract_platform(client: LtiClient, courses: list[tuple[str, str, str]],
                           wanted: dict | None = None) -> PlatformExtraction:
    """Grant check + every course of one platform, concurrently within the client's in-flight limit.
    courses: (context_id, lineitems_url, memberships_url); wanted: context_id → which line items'
    results to read (gradesync/diagnosis/wanted.py; absent = all)."""
    name = client.registration.name
    try:
        grant = await score_grant_task(client, name)
    except LtiError as e:
        grant = ScoreGrant.from_error(e.info)
    try:
        await client.read_grant()
    except LtiError as e:
        # No read token: nothing of this platform can be audited.
        failed = failed_snapshot(e)
        return PlatformExtraction(grant, {ctx: failed for ctx, _, _ in courses})

    async def one(ctx: str, li_url: str, m_url: str) -> tuple[str, CourseSnapshot]:
        try:
            snap = await extract_course_task(client, name, ctx, li_url, m_url, (wanted or {}).get(ctx))
        except Exception as e:   # after the task's retries: the course is unverified
            snap = failed_snapshot(e)
        return ctx, snap

    pairs = await asyncio.gather(*(one(*c) for c in courses))
    return PlatformExtraction(grant, dict(pairs))


async def read_rest_where_needed(client: LtiClient, tool: ToolRecords,
                                 snapshots: dict[tuple[str, str], CourseSnapshot]) -> dict[tuple[str, str], CourseSnapshot]:
    """The batch's snapshots, with every result read in the courses where an item looks inactive
    (`rest_needed`: its heuristic counts the other items' results)."""
    out = dict(snapshots)

    async def one(key: tuple[str, str]) -> None:
        try:
            out[key] = await read_rest_task(client, key[0], key[1], snapshots[key])
        except Exception as e:
            out[key] = failed_snapshot(e)

    keys = [k for k, snap in snapshots.items() if snap.error is None and k in tool.courses
            and rest_needed(tool.platforms[k[0]], tool.courses[k], snap)]
    await asyncio.gather(*(one(k) for k in keys))
    return out


def request_stats(client: LtiClient) -> dict:
    s = client.stats
    return {"requests": dict(s.requests), "total": s.total, "retries": s.retries,
            "throttled": s.throttled, "throttle_wait_s": round(s.throttle_wait_s, 3)}
