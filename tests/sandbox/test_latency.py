"""sandbox_lms/latency.py: injected latency ends on time — aimed early by the loop's usual wake-up lateness,
never beating the deadline by more than that — and the bench's select() loop serves like the default one."""
from __future__ import annotations

import asyncio
import time

from sandbox_lms.latency import MAX_AIM_S, LatencyTimer, precise_loop
from sandbox_lms.server import start_sandbox


def _wakeups(loop: asyncio.AbstractEventLoop, n: int) -> tuple[LatencyTimer, list[float]]:
    """`n` sleeps of ~20 ms on `loop`; returns the timer and each wake-up's offset from its deadline (s)."""
    timer = LatencyTimer()

    async def run() -> list[float]:
        offsets = []
        for i in range(n):
            deadline = time.perf_counter() + 0.02 + (i % 7) * 0.0001
            await timer.sleep_until(deadline)
            offsets.append(time.perf_counter() - deadline)
            timer.answered(deadline)
        return offsets

    try:
        return timer, loop.run_until_complete(run())
    finally:
        loop.close()


def test_sleeps_end_near_their_deadline_and_never_well_before_it():
    for loop in (asyncio.new_event_loop(), precise_loop()):
        timer, offsets = _wakeups(loop, 80)
        settled = offsets[32:]                       # after the aim was set twice
        assert min(offsets) > -MAX_AIM_S              # never earlier than the largest aim allowed
        assert 0 <= timer.aim_s <= MAX_AIM_S
        # Aimed at the 10th percentile of past lateness: most wake-ups still come at or after the deadline.
        assert sum(1 for o in settled if o >= -0.0001) >= len(settled) * 0.6


def test_a_past_deadline_returns_at_once():
    timer = LatencyTimer()
    loop = asyncio.new_event_loop()
    try:
        t0 = time.perf_counter()
        loop.run_until_complete(timer.sleep_until(t0 - 1))
        assert time.perf_counter() - t0 < 0.01
    finally:
        loop.close()


def test_on_the_precise_loop_a_read_answers_after_its_latency(state, tool_key):
    from sandbox_helpers import Tool

    with start_sandbox(state, precise_timers=True) as running:
        spec = Tool(running, running.state.registrations["spec"], tool_key[0])
        try:
            token = spec.token()
            running.control.set_faults("spec", latency_ms=50)
            for _ in range(3):
                t0 = time.perf_counter()
                r = spec.get(spec.url("line_items"), token)
                elapsed = time.perf_counter() - t0
                assert r.status_code == 200
                assert 0.05 - MAX_AIM_S <= elapsed < 0.5
        finally:
            spec.http.close()
