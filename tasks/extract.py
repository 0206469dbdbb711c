"""Extraction tasks: the score grant, and a batch's course reads as one task run.

The client already retries single requests (backoff, Retry-After); `with_retries` is the second line
for a course whose whole read failed transiently. What still fails is returned as a failed snapshot
(course *unverified*), never raised into the flow.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from prefect import task
from prefect.cache_policies import NO_CACHE

from gradesync.audit.extract import RETRYABLE, extract_courses, failed_snapshot, read_rest, with_retries
from gradesync.diagnosis.inputs import CourseSnapshot, ScoreGrant
from lti_client import LtiClient, LtiError
from lti_client.types import SCOPE_SCORE


def _transient(task, task_run, state) -> bool:
    """Retry a task only for faults that another try can fix (never 4xx, never a paging loop)."""
    # _sync: inside an async task run, State.result would otherwise hand back a coroutine.
    err = state.result(raise_on_failure=False, _sync=True)
    return isinstance(err, LtiError) and err.info.kind in RETRYABLE


@task(name="score-grant", task_run_name="score-grant-{platform}", retries=2, retry_delay_seconds=[1, 3],
      retry_condition_fn=_transient, cache_policy=NO_CACHE)
async def score_grant_task(client: LtiClient, platform: str) -> ScoreGrant:
    return ScoreGrant.from_token_grant(await client.score_grant(), SCOPE_SCORE)


@dataclass
class PlatformExtraction:
    grant: ScoreGrant
    snapshots: dict[str, CourseSnapshot] = field(default_factory=dict)   # context_id → snapshot


@task(name="extract-courses", task_run_name="extract-{platform}", cache_policy=NO_CACHE)
async def extract_platform(client: LtiClient, platform: str, courses: list[tuple[str, str, str]],
                           wanted: dict | None = None) -> PlatformExtraction:
    """Grant check + every course of one batch (`extract_courses`: concurrently, within the client's limit).
    courses: (context_id, lineitems_url, memberships_url); wanted: context_id → which line items'
    results to read (gradesync/diagnosis/wanted.py; absent = all). One task run for the whole batch:
    a task run per course cost more than its requests (stack-notes A.2: keep tasks coarse)."""
    try:
        grant = await score_grant_task(client, platform)
    except LtiError as e:
        grant = ScoreGrant.from_error(e.info)
    try:
        await client.read_grant()
    except LtiError as e:
        # No read token: nothing of this platform can be audited.
        failed = failed_snapshot(e)
        return PlatformExtraction(grant, {ctx: failed for ctx, _, _ in courses})

    return PlatformExtraction(grant, await extract_courses(client, courses, wanted, platform))


@task(name="read-rest", task_run_name="read-rest-{platform}", cache_policy=NO_CACHE)
async def read_rest_of(client: LtiClient, platform: str, snapshots: dict[tuple[str, str], CourseSnapshot],
                       keys: list[tuple[str, str]]) -> dict[tuple[str, str], CourseSnapshot]:
    """The batch's snapshots, with every result read in the courses `keys` (gradesync.diagnosis.wanted
    `needs_rest`: an item there looks inactive, and its heuristic counts the other items' results)."""
    out = dict(snapshots)

    async def one(key: tuple[str, str]) -> None:
        out[key] = await with_retries(lambda: read_rest(client, snapshots[key]), "/".join(key))

    await asyncio.gather(*(one(k) for k in keys))
    return out


def request_stats(client: LtiClient) -> dict:
    s = client.stats
    return {"requests": dict(s.requests), "total": s.total, "retries": s.retries,
            "throttled": s.throttled, "throttle_wait_s": round(s.throttle_wait_s, 3)}
