"""The resync, as a story: open the run → claim due tasks → send each platform's share (in parallel,
each holding slots of its key's LMS budget) → repeat until none is due or the limit is reached → close
the run. Exactly-once in effect: see gradesync.resync."""
from __future__ import annotations

import asyncio
import math
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from gradesync.budget import Purpose
from gradesync.resync import runner
from gradesync.resync.claims import DEFAULT_LEASE, worker_id
from gradesync.settings import load_settings
from models import utcnow
from tasks.resync import claim_batch, send_platform


@flow(name="resync", log_prints=False)
async def resync_pending(platforms: list[str] | None = None, limit: int | None = None, config: str | None = None,
                         worker: str | None = None, reclaim_after_s: float = DEFAULT_LEASE.total_seconds(),
                         budget: Purpose = "on-demand") -> dict[str, Any]:
    """Send due resync tasks (pending, approved, sent-to-recheck) of `platforms` (all when None), at
    most `limit` of them; returns the run's tally (sends, outcomes, unverified courses). `budget`: whose
    share of each developer key the sends take (gradesync.budget) — "nightly" inside the nightly audit,
    "on-demand" for `gradesync resync run`."""
    log = get_run_logger()
    settings = load_settings(config)
    names = platforms or settings.platform_names
    registrations = {name: settings.platform(name) for name in names}     # an unknown name → ConfigError
    url, me, audit = settings.database.url, worker_id(worker), settings.audit
    tally = runner.Tally(runner.start_run(url, {"platforms": names, "limit": limit, "worker": me},
                                          str(flow_run.get_id() or "")), me)
    due_before = utcnow()                   # a task handled in this run is not due again in it
    live, remaining = list(names), limit if limit is not None else math.inf
    try:
        while live and remaining > 0:
            batch = await claim_batch(url, me, live, int(min(runner.BATCH, remaining)), due_before, reclaim_after_s,
                                      set(tally.unverified_courses), first_batch=tally.claimed == 0)
            if not batch:
                break
            tally.claimed += len(batch)
            remaining -= len(batch)
            outcomes = await asyncio.gather(*(
                send_platform(registrations[p], url, me, tally.run_id, tasks, audit.resync_max_attempts, budget,
                              audit.on_demand_reserved_share)
                for p, tasks in runner.by_platform(batch).items()))
            for out in outcomes:
                tally.add(out)
            live = [p for p in live if p not in tally.platform_errors]   # a platform that failed is done
    except BaseException as exc:
        runner.finish_run(url, tally, failed=f"{type(exc).__name__}: {exc}")    # never leave a run "running"
        raise
    runner.finish_run(url, tally)
    log.info("resync run %s: %d task(s) claimed, %d score POST(s), outcomes %s", tally.run_id, tally.claimed,
             tally.sends, dict(tally.outcomes))
    return tally.as_dict()
