"""One LMS budget per developer key, shared by every worker, every run and the resync.

A platform registration is one developer key. Its requests in flight never exceed the key's limit L
(`max_concurrency`, else the vendor default: `PlatformRegistration.key_in_flight_limit`) across all
processes and machines. The budget is two Prefect global concurrency limits, held as *leases* for the
length of a batch — one acquire and one release per batch (Prefect renews the lease in the background),
never an API call per request:

- `lms-<platform>`       limit L      taken by every holder (nightly batches, on-demand audits, resyncs);
- `lms-<platform>-bulk`  limit L − R  taken as well by nightly work only,

so nightly work can never hold more than L − R slots and R slots stay free for a support ticket's
on-demand audit (R = `audit.on_demand_reserved_share` of L, at least 1 when L > 1). A holder caps its
LtiClient at the slots it holds (`LtiClient(in_flight=n)`), so the clients' caps sum to ≤ L.
"""
from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from lti_client.registration import PlatformRegistration

Purpose = Literal["nightly", "on-demand"]
# A nightly batch may wait for the key while another platform's work runs: hours, not seconds.
NIGHTLY_WAIT_S = 6 * 3600.0
# An on-demand audit takes the whole key when it is free, else its reserved share (waiting at most this).
RESERVED_WAIT_S = 600.0
# A lease outlives a killed holder by at most this (Prefect renews it while the holder lives; 60 s is
# the server's minimum).
LEASE_S = 60.0


def limit_names(platform: str) -> tuple[str, str]:
    """(all holders, nightly holders) limit names of a platform's key."""
    base = f"lms-{platform.lower()}"
    return base, f"{base}-bulk"


def reserved_slots(limit: int, share: float) -> int:
    """Slots of a key that nightly work never takes (R)."""
    if limit <= 1:
        return 0
    return min(limit - 1, max(1, math.ceil(limit * share)))


def nightly_slots(limit: int, share: float) -> int:
    """Slots nightly work may hold in total (L − R)."""
    return limit - reserved_slots(limit, share)


async def ensure_limits(reg: PlatformRegistration, share: float) -> tuple[int, int, dict[str, int]]:
    """Create or correct the key's two limits (gradesync.toml is their source of truth).
    Returns (L, L−R, slots free right now per limit name)."""
    from prefect.client.orchestration import get_client

    limit = reg.key_in_flight_limit
    bulk = nightly_slots(limit, share)
    base, bulk_name = limit_names(reg.name)
    free = {base: limit, bulk_name: bulk}
    async with get_client() as c:
        for name, value in ((base, limit), (bulk_name, bulk)):
            try:
                current = await c.read_global_concurrency_limit_by_name(name)
                free[name] = max(0, value - current.active_slots)
                if current.limit == value and current.active:
                    continue
            except Exception:
                pass
            await c.upsert_global_concurrency_limit_by_name(name, limit=value)
    return limit, bulk, free


@asynccontextmanager
async def lms_slots(reg: PlatformRegistration, purpose: Purpose, *, share: float = 0.05,
                    want: int | None = None) -> AsyncIterator[int]:
    """Hold slots of `reg`'s key for the body; yields how many (cap the LtiClient at it).

    nightly: `want` (default L − R) slots of both limits, waiting as long as the night needs.
    on-demand: the whole key (or `want`) when that many are free, else the reserved share R — free
    for a ticket whatever the night holds."""
    from prefect.concurrency.asyncio import concurrency

    # Slots that are free are taken one acquisition at a time per process (a Prefect server on SQLite
    # answers simultaneous slot requests with 503, and its client retries only after 2 s); a holder that
    # must wait for slots waits outside that lock.
    lock = _acquiring()
    await lock.acquire()
    locked = True
    try:
        limit, bulk, free = await ensure_limits(reg, share)
        base, bulk_name = limit_names(reg.name)
        if purpose == "nightly" or bulk == limit:   # L == 1: nothing reserved, everyone queues for the slot
            n = max(1, min(bulk, want or bulk))
            names = [base, bulk_name] if purpose == "nightly" else [base]
            wait = NIGHTLY_WAIT_S
        else:
            whole = max(1, min(limit, want or limit))
            n = whole if free[base] >= whole else min(whole, limit - bulk)
            names, wait = [base], RESERVED_WAIT_S
        held = concurrency(names, occupy=n, timeout_seconds=wait, lease_duration=LEASE_S, strict=True)
        if any(free[name] < n for name in names):
            lock.release()          # it will wait: let other holders of this process try meanwhile
            locked = False
        await held.__aenter__()
    finally:
        if locked:
            lock.release()
    try:
        yield n
    except BaseException as e:
        await held.__aexit__(type(e), e, e.__traceback__)
        raise
    else:
        await held.__aexit__(None, None, None)


_locks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = weakref.WeakKeyDictionary()


def _acquiring() -> asyncio.Lock:
    """This event loop's acquisition lock (tests run several loops in one process)."""
    loop = asyncio.get_running_loop()
    lock = _locks.get(loop)
    if lock is None:
        lock = _locks[loop] = asyncio.Lock()
    return lock
