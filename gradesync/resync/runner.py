"""The resync run's plain steps, which flows/resync.py strings together: the run row, claiming a batch,
sending one platform's share of it, the tally of what the run did, and closing the run row. None of
them needs Prefect: the LMS budget's cap arrives as a number (`in_flight`)."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

import models as m
from gradesync.resync.claims import claim_probes, claim_tasks, release_dead_claims
from gradesync.resync.sender import PlatformOutcome, PlatformSender
from gradesync.resync.store import ClaimedTask, ResyncStore
from lti_client.registration import PlatformRegistration

BATCH = 200          # tasks claimed at once: one batch's sends hold the key's slots together


def start_run(database_url: str, params: dict[str, Any], flow_run_id: str | None) -> int:
    """An `audit_run` row of kind "resync" (its course_audit rows name courses the resync could not reach)."""
    m.upgrade_database(database_url)
    with m.session_scope(m.make_engine(database_url)) as s:
        run = m.AuditRun(kind="resync", params=params, flow_run_id=flow_run_id or None, state="running")
        s.add(run)
        s.flush()
        return run.id


def claim_batch(database_url: str, worker: str, platforms: list[str], limit: int, due_before: datetime,
                lease_s: float, exclude_courses: set[tuple[str, str]], first_batch: bool) -> list[ClaimedTask]:
    """Claim up to `limit` due tasks for `worker` (committed) and return their snapshots. The run's
    first batch also hands back the claims of dead local workers and takes one probe per line item
    that refused as inactive (so each run probes a blocked item once)."""
    engine = m.make_engine(database_url)
    ids: list[int] = []
    if first_batch:
        release_dead_claims(engine, platforms)
        ids = claim_probes(engine, worker, platforms, limit, exclude_courses)
    ids += claim_tasks(engine, worker, platforms, limit - len(ids), due_before=due_before,
                       lease=timedelta(seconds=lease_s), exclude_courses=exclude_courses)
    return ResyncStore(database_url, worker).load(ids)


async def send_platform(registration: PlatformRegistration, database_url: str, worker: str, run_id: int,
                        tasks: list[ClaimedTask], max_attempts: int, *, in_flight: int | None = None,
                        transport: httpx.AsyncBaseTransport | None = None) -> PlatformOutcome:
    """Send one platform's share of a batch through one LtiClient, at most `in_flight` requests at once
    (the slots of the key's LMS budget the caller holds; None: the key's own limit)."""
    store = ResyncStore(database_url, worker)
    return await PlatformSender(registration, store, run_id, max_attempts, transport=transport,
                                in_flight=in_flight).run(tasks)


def by_platform(tasks: list[ClaimedTask]) -> dict[str, list[ClaimedTask]]:
    """Tasks grouped by platform, in claim order."""
    groups: dict[str, list[ClaimedTask]] = defaultdict(list)
    for t in tasks:
        groups[t.platform].append(t)
    return dict(groups)


@dataclass
class Tally:
    """Everything a resync run did, summed over batches and platforms."""
    run_id: int
    worker: str
    claimed: int = 0
    sends: int = 0
    outcomes: Counter = field(default_factory=Counter)
    unverified_courses: dict[tuple[str, str], str] = field(default_factory=dict)
    platform_errors: dict[str, str] = field(default_factory=dict)
    request_stats: dict[str, Any] = field(default_factory=dict)

    def add(self, out: PlatformOutcome) -> None:
        self.sends += out.sends
        self.outcomes.update(out.outcomes)
        for ctx, reason in out.unverified_courses.items():
            self.unverified_courses[(out.platform, ctx)] = reason
        if out.platform_error:
            self.platform_errors[out.platform] = out.platform_error
        stats = self.request_stats.setdefault(out.platform, {"requests": {}, "retries": 0, "throttled": 0})
        for kind, n in (out.request_stats.get("requests") or {}).items():
            stats["requests"][kind] = stats["requests"].get(kind, 0) + n
        stats["retries"] += out.request_stats.get("retries", 0)
        stats["throttled"] += out.request_stats.get("throttled", 0)

    def as_dict(self) -> dict[str, Any]:
        """The flow's JSON-able return value."""
        return {"run_id": self.run_id, "worker": self.worker, "claimed": self.claimed, "sends": self.sends,
                "outcomes": dict(sorted(self.outcomes.items())),
                "verified": sum(n for k, n in self.outcomes.items() if k.startswith("verified") or k == "already_in_lms"),
                "unverified_courses": [{"platform": p, "context_id": c, "reason": r}
                                       for (p, c), r in sorted(self.unverified_courses.items())],
                "platform_errors": dict(self.platform_errors), "request_stats": self.request_stats}


def finish_run(database_url: str, tally: Tally, *, failed: str | None = None) -> None:
    """Close the run row with its counts (state partial when a course or platform could not be reached)."""
    with m.session_scope(m.make_engine(database_url)) as s:
        run = s.get(m.AuditRun, tally.run_id)
        run.finished_at = m.utcnow()
        run.state = "failed" if failed else "partial" if tally.unverified_courses or tally.platform_errors else "completed"
        run.counts = {**tally.as_dict(), **({"error": failed[:500]} if failed else {})}
        run.request_stats = tally.request_stats
