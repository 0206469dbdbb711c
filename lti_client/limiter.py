"""How many requests one registration keeps in flight, adapted to what the platform says.

The starting limit (the ceiling) is the registration's `max_concurrency` or the vendor's default
(Canvas: 600 high-water ÷ 50 up-front cost per request = 12, lti-platform-behavior.md §6.1). It moves:

- down on a throttle answer, to one less than what was in flight when the platform refused — "just
  under" the limit it showed, not halved (the platform refused the n-th, so n − 1 were accepted);
- down when the platform's bucket says less room than we use (`X-Rate-Limit-Remaining`, Canvas §6.1:
  remaining = high-water − 50 × others in flight, so our allowance ≈ ours in flight − 1 + ⌈remaining ÷ 50⌉;
  another process on the same developer key shows up here before it causes a 403);
- back up one step at a time: when the bucket shows room (platforms that send it), else after a quiet
  period that doubles after every throttle, so a limit the platform enforces costs at most an
  occasional probe, never a stream of 403s. Never above the ceiling.
"""
from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from typing import Any

# Without a bucket header, wait this long without a throttle before trying one more in flight.
PROBE_AFTER_S = 30.0


class AdaptiveLimiter:
    """A semaphore whose size follows the platform's throttle answers and bucket headers."""

    def __init__(self, ceiling: int, *, clock: Callable[[], float], request_cost: float | None = None,
                 probe_after_s: float = PROBE_AFTER_S) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = self.ceiling
        self.in_flight = 0
        self._clock = clock
        self._cost = request_cost              # bucket units one request holds while in flight (None: unknown)
        self._cap = self.ceiling               # highest limit not yet refused by a throttle answer
        self._probe_after = probe_after_s
        self._last_change = clock()
        self._estimates: deque[int] = deque(maxlen=self.ceiling)
        self._roomy = 0                        # consecutive answers whose bucket had room beyond our limit
        self._waiters: deque[tuple[asyncio.Future[Any], Callable[[], Any] | None]] = deque()
        self.lowest = self.ceiling             # for stats and tests: the lowest limit used so far

    # ---- the semaphore --------------------------------------------------------------------------
    async def acquire(self, start: Callable[[], Any] | None = None,
                      release: Callable[[], None] | None = None) -> Any:
        """Wait for a free slot (first come, first served). `start`: what to do the moment a slot is handed
        over by `release` — called there, synchronously, so a freed slot's next request goes out before
        anything else runs (issue 13); its result is returned (None when the slot was free at once: the
        caller starts the request itself). If the caller is cancelled just after such a handover, a result
        with `abort()` is aborted and the slot given back through `release` (default: `self.release`; the
        caller's own, when something else may give the same slot back first)."""
        self._maybe_probe()
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return None
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((waiter, start))
        try:
            return await waiter                # release() counted us in before waking us
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                started = waiter.result()
                if started is not None and hasattr(started, "abort"):
                    started.abort()
                (release or self.release)()    # woken and cancelled at once: give the slot back
            else:
                self._waiters.remove((waiter, start))
            raise

    def release(self) -> None:
        """Free a slot and hand free slots to the waiters."""
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            waiter, start = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                started = None
                if start is not None:
                    try:
                        started = start()
                    except Exception:          # noqa: BLE001 — the waiter then sends it the ordinary way
                        started = None
                waiter.set_result(started)

    def _set(self, limit: int) -> None:
        limit = max(1, min(limit, self._cap, self.ceiling))
        if limit != self.limit:
            self.limit = limit
            self.lowest = min(self.lowest, limit)
            self._last_change = self._clock()
            self._estimates.clear()
            self._roomy = 0
            self._wake()

    # ---- the platform's signals ---------------------------------------------------------------
    def on_throttle(self, in_flight: int) -> None:
        """The platform refused a request as over its limit while `in_flight` of ours (it included) were out."""
        self._cap = max(1, min(self._cap, in_flight - 1))
        self._probe_after *= 2                 # each refusal makes the next blind probe rarer
        self._set(self._cap)

    def on_remaining(self, remaining: float, in_flight: int) -> None:
        """A successful answer carried `X-Rate-Limit-Remaining` while `in_flight` of ours (it included) were
        out; only used when the vendor's cost per request in flight is known."""
        if not self._cost:
            return
        allowance = (in_flight - 1) + max(0, math.ceil(remaining / self._cost))
        self._estimates.append(allowance)
        if len(self._estimates) == self._estimates.maxlen and max(self._estimates) < self.limit:
            # Even the most generous recent reading leaves less room than we use: someone else shares
            # the bucket (or it filled with cost). Step down to what it allows.
            self._set(max(self._estimates))
            return
        self._roomy = self._roomy + 1 if allowance > self.limit else 0
        if self._roomy >= self.limit and self.limit < self._cap:
            self._set(self.limit + 1)

    def _maybe_probe(self) -> None:
        # Blind recovery for platforms without a bucket header: one more slot after a quiet period.
        if self._cap < self.ceiling and self._clock() - self._last_change >= self._probe_after:
            self._cap += 1
            self._set(self._cap)
