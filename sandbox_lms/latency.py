"""Injected latency that ends when it should: asyncio timers wake late, and the sandbox must not charge
that to the client a benchmark measures (issue 13).

Why: epoll counts timeouts in whole milliseconds, rounded up, so `asyncio.sleep` on the default loop ends
up to a millisecond late, plus the machine's own wake-up; a select() loop (`precise_loop`) takes
microsecond timeouts. (On the bench machine, in experiments outside the repo: 0.9 ms late on average on
epoll, 0.3 ms on select(), ~0.1 ms more to write the answer; `tests/sandbox/test_latency.py` checks that
wake-ups end near their deadline, never earlier than the largest aim.) `LatencyTimer` aims each sleep earlier by the usual
lateness of an answer leaving the server — the 10th percentile of the recent ones (measured when the last
byte went to the socket) — so nine answers in ten leave at or after their deadline; the tenth may leave
early by at most the aim, which is capped at MAX_AIM_S (2 ms).
"""
from __future__ import annotations

import asyncio
import selectors
import time
from collections import deque

RECENT = 64            # wake-ups remembered
REAIM_EVERY = 16       # the aim is recomputed after this many wake-ups
MAX_AIM_S = 0.002      # never aim earlier than this, whatever the loop does


class LatencyTimer:
    """Sleeps until a `time.perf_counter()` deadline, aimed early by the loop's usual wake-up lateness."""

    def __init__(self) -> None:
        self._late: deque[float] = deque(maxlen=RECENT)
        self._aim = 0.0
        self._seen = 0

    @property
    def aim_s(self) -> float:
        """How much earlier than the deadline sleeps are asked to end now."""
        return self._aim

    async def sleep_until(self, deadline: float) -> None:
        wait = deadline - self._aim - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)

    def answered(self, deadline: float) -> None:
        """The answer due at `deadline` has just been written to the socket: its lateness (the timer's, and
        the writing after it) sets the aim of the next sleeps."""
        self._late.append(time.perf_counter() - deadline + self._aim)
        self._seen += 1
        if self._seen % REAIM_EVERY == 0:
            ordered = sorted(self._late)
            self._aim = min(MAX_AIM_S, max(0.0, ordered[len(ordered) // 10]))


def precise_loop() -> asyncio.AbstractEventLoop:
    """An asyncio loop on select(), whose timeouts are in microseconds (epoll's are whole milliseconds).
    select() takes file descriptors below 1024 only: for a sandbox in its own process (the benchmarks),
    not inside a test process that may hold many."""
    return asyncio.SelectorEventLoop(selectors.SelectSelector())
