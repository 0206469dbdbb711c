"""The resync, as a story: claim due tasks → send each platform's share (in parallel) → repeat until
none is due or the limit is reached → close the run. Exactly-once in effect: see gradesync.resync."""
from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from gradesync.resync.claims import DEFAULT_LEASE, worker_id
from gradesync.resync.runner import run_resync
from gradesync.settings import load_settings
from tasks.resync import claim_batch, send_platform


@flow(name="resync", log_prints=False)
async def resync_pending(platforms: list[str] | None = None, limit: int | None = None, config: str | None = None,
                         worker: str | None = None,
                         reclaim_after_s: float = DEFAULT_LEASE.total_seconds()) -> dict[str, Any]:
    """Send due resync tasks (pending, approved, sent-to-recheck) of `platforms` (all when None), at
    most `limit` of them; returns the run's tally (sends, outcomes, unverified courses)."""
    log = get_run_logger()
    settings = load_settings(config)
    tally = await run_resync(settings, platforms, limit, worker_id(worker), reclaim_after_s,
                             str(flow_run.get_id() or ""), claim=claim_batch, send=send_platform)
    log.info("resync run %s: %d task(s) claimed, %d score POST(s), outcomes %s", tally.run_id, tally.claimed,
             tally.sends, dict(tally.outcomes))
    return tally.as_dict()
