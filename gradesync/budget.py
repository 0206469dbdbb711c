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

Without a reachable Prefect API (unit tests that call the plain functions) `guard=False` skips the lease
and the client keeps the key's own limit.
"""
from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from lti_client.registration import PlatformRegistration

Purpose = Literal["nightly", "on-demand"]
# A nightly batch may wait for the key while another platform's work runs: hours, not seconds.
NIGHTLY_WAIT_S = 6 * 3600.0
# An on-demand audit first asks for the whole key, and takes its reserved share if the night holds it.
WHOLE_KEY_WAIT_S = 2.0
RESERVED_WAIT_S = 600.0


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


async def ensure_limits(reg: PlatformRegistration, share: float) -> tuple[int, int]:
    """Create or correct the key's two limits (gradesync.toml is their source of truth). Returns (L, L−R)."""
    from prefect.client.orchestration import get_client

    limit = reg.key_in_flight_limit
    bulk = nightly_slots(limit, share)
    base, bulk_name = limit_names(reg.name)
    async with get_client() as c:
        for name, value in ((base, limit), (bulk_name, bulk)):
            try:
                current = await c.read_global_concurrency_limit_by_name(name)
                if current.limit == value and current.active:
                    continue
            except Exception:
                pass
            await c.upsert_global_concurrency_limit_by_name(name, limit=value)
    return limit, bulk


@asynccontextmanager
async def lms_slots(reg: PlatformRegistration, purpose: Purpose, *, share: float = 0.2,
                    want: int | None = None, guard: bool = True) -> AsyncIterator[int]:
    """Hold slots of `reg`'s key for the body; yields how many (cap the LtiClient at it).

    nightly: `want` (default L − R) slots of both limits, waiting as long as the night needs.
    on-demand: the whole key when it is free within seconds, else the reserved share R."""
    limit = reg.key_in_flight_limit
    if not guard:
        yield min(limit, want or limit)
        return
    from prefect.concurrency.asyncio import concurrency

    limit, bulk = await ensure_limits(reg, share)
    base, bulk_name = limit_names(reg.name)
    if purpose == "nightly" or bulk == limit:   # L == 1: nothing reserved, everyone queues for the one slot
        n = max(1, min(bulk, want or bulk))
        names = [base, bulk_name] if purpose == "nightly" else [base]
        async with concurrency(names, occupy=n, timeout_seconds=NIGHTLY_WAIT_S, strict=True):
            yield n
        return
    whole = max(1, min(limit, want or limit))
    try:
        cm = concurrency(base, occupy=whole, timeout_seconds=WHOLE_KEY_WAIT_S, strict=True)
        await cm.__aenter__()
    except (TimeoutError, asyncio.TimeoutError):
        cm = None
    if cm is not None:
        try:
            yield whole
        finally:
            await cm.__aexit__(None, None, None)
        return
    n = min(whole, limit - bulk)
    async with concurrency(base, occupy=n, timeout_seconds=RESERVED_WAIT_S, strict=True):
        yield n
