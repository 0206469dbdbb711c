"""Requests in flight adapt to the platform (issue 13): vendor defaults from the facts file, a throttle
answer settles the client just under the platform's limit (no stream of 403s), Canvas's
X-Rate-Limit-Remaining lowers it before any 403, D2L's Retry-After is waited out by everyone, and a
default-config Canvas extraction over real HTTP stays inside a 12-in-flight throttle."""
from __future__ import annotations

import asyncio

import httpx
import pytest
from lti_fakes import HOST, FakeLms, FakeTime, json_response

from gradesync.audit.extract import extract_course
from lti_client import LtiClient
from lti_client.limiter import AdaptiveLimiter
from sandbox_lms import urls
from sandbox_lms.server import start_sandbox
from sandbox_lms.worlds import build_world

pytestmark = pytest.mark.anyio

RESULTS = "/api/lti/courses/7/line_items/{}/results"
THROTTLE_TEXT = "403 Forbidden (Rate Limit Exceeded)"
# Long enough that even a slow, shared machine gets more than 12 requests out within one latency, so
# the sandbox's throttle really bites a client that sends too many (the armed test below proves it).
LATENCY_MS = 150


class CanvasBucket:
    """A Canvas-like platform over httpx.MockTransport: `capacity` requests in flight (600 ÷ 50, §6.1),
    `foreign` of them held by another process on the same developer key; answers carry
    X-Rate-Limit-Remaining = 50 × free slots when `headers`, the excess gets the 403 throttle."""

    def __init__(self, capacity: int = 12, *, headers: bool = True) -> None:
        self.capacity, self.headers = capacity, headers
        self.foreign = 0
        self.in_flight = self.peak = 0
        self.codes: list[int] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.in_flight + self.foreign >= self.capacity:
            self.codes.append(403)
            return httpx.Response(403, text=THROTTLE_TEXT,
                                  headers={"Content-Type": "text/plain", "X-Rate-Limit-Remaining": "0.0"})
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0.002)
            others = self.in_flight - 1 + self.foreign
            headers = {"X-Rate-Limit-Remaining": f"{50.0 * (self.capacity - others):.1f}"} if self.headers else {}
            self.codes.append(200)
            return json_response([], headers=headers)
        finally:
            self.in_flight -= 1


def canvas_lms(bucket: CanvasBucket, n: int) -> FakeLms:
    lms = FakeLms("canvas")
    for i in range(n):
        lms.route("GET", RESULTS.format(i), bucket)
    return lms


async def read_all(client: LtiClient, indexes: range) -> None:
    await asyncio.gather(*(client.list_results(f"https://{HOST}{RESULTS.format(i).removesuffix('/results')}")
                           for i in indexes))


async def test_canvas_default_keeps_twelve_in_flight_and_is_never_throttled(make_reg, make_client):
    bucket = CanvasBucket(12)
    async with make_client(make_reg("canvas"), canvas_lms(bucket, 60)) as client:
        await read_all(client, range(60))
        assert client.in_flight_limit == 12
    assert bucket.peak == 12 and 403 not in bucket.codes


async def test_a_throttle_settles_just_under_the_limit_without_repeated_403s(make_reg, make_client):
    # Configured for 20 in flight against a platform that takes 9: the first burst is refused beyond 9,
    # then the client stays at 9 — later reads get no 403 at all.
    bucket = CanvasBucket(9, headers=False)
    async with make_client(make_reg("canvas", max_concurrency=20), canvas_lms(bucket, 200)) as client:
        await read_all(client, range(40))
        first = bucket.codes.count(403)
        assert 1 <= first <= 20 - 9 and client.in_flight_limit == 9
        bucket.codes.clear()
        bucket.peak = 0
        await read_all(client, range(40, 200))
    assert 403 not in bucket.codes and bucket.peak == 9
    assert client.stats.throttled == first


async def test_a_shrinking_bucket_lowers_the_limit_before_any_403(make_reg, make_client):
    # Another process takes 4 of Canvas's 12 slots: remaining drops to 50 × (12 − 4 − ours − 1)
    # and the client steps down to 8 from the header alone.
    bucket = CanvasBucket(12)
    async with make_client(make_reg("canvas"), canvas_lms(bucket, 300)) as client:
        await read_all(client, range(50))
        assert client.in_flight_limit == 12 and 403 not in bucket.codes
        bucket.foreign = 4
        await read_all(client, range(50, 300))
        assert client.in_flight_limit == 8
    late = bucket.codes[-150:]
    assert 403 not in late, "the client kept hitting the shrunken bucket"
    assert bucket.codes.count(403) <= 4


async def test_d2l_retry_after_pauses_every_request_and_lowers_the_limit(make_reg, make_client, fake_time):
    lms = FakeLms("d2l")
    path = "/d2l/api/lti/ags/2p0/deployment/d/orgunit/7/lineitems"
    lms.route("GET", path, httpx.Response(429, headers={"Retry-After": "3"}), json_response([]), json_response([]))
    async with make_client(make_reg("d2l"), lms) as client:
        await asyncio.gather(client.list_line_items(f"https://{HOST}{path}"),
                             client.list_line_items(f"https://{HOST}{path}"))
        assert client.stats.throttle_wait_s >= 3
        assert client.in_flight_limit == 1   # refused with 2 out: 1 is what D2L took


def test_without_a_bucket_header_the_limit_probes_back_up_slowly():
    clock = FakeTime()
    limiter = AdaptiveLimiter(6, clock=clock.clock, probe_after_s=30)
    limiter.on_throttle(5)
    assert limiter.limit == 4
    clock.now += 59                                    # the first refusal doubled the quiet period
    asyncio.run(_acquire_release(limiter))
    assert limiter.limit == 4
    clock.now += 2
    asyncio.run(_acquire_release(limiter))
    assert limiter.limit == 5
    limiter.on_throttle(5)                             # refused again at 5: back to 4, next probe in 120 s
    clock.now += 119
    asyncio.run(_acquire_release(limiter))
    assert limiter.limit == 4


async def _acquire_release(limiter: AdaptiveLimiter) -> None:
    await limiter.acquire()
    limiter.release()


async def test_waiters_get_slots_in_order_and_a_cancelled_waiter_frees_its_turn():
    limiter = AdaptiveLimiter(1, clock=FakeTime().clock)
    await limiter.acquire()
    order: list[str] = []

    async def take(name: str) -> None:
        await limiter.acquire()
        order.append(name)
        limiter.release()
    a, b, c = (asyncio.create_task(take(n)) for n in "abc")
    await asyncio.sleep(0)
    b.cancel()
    limiter.release()
    await asyncio.gather(a, c)
    assert order == ["a", "c"] and limiter.in_flight == 0


@pytest.mark.timeout(120)
async def test_default_canvas_extraction_under_a_twelve_in_flight_throttle_gets_no_403(tmp_path):
    """Real HTTP: a Canvas-profile sandbox that answers 403 beyond 12 in flight, 150 ms per request, and
    the registration exactly as exported (no max_concurrency): every course read, zero throttled answers."""
    world = build_world(3, "bench", clean=True, profile="canvas", courses=40, items=4, learners=8)
    with start_sandbox(world.state) as sandbox:
        config = world.export(tmp_path / "w", sandbox.base_url)
        from gradesync.settings import load_settings
        settings = load_settings(config)
        (name,) = world.state.registrations
        reg = settings.platform(name)
        assert reg.max_concurrency is None
        sandbox.control.set_faults(name, latency_ms=LATENCY_MS, max_in_flight=12)
        state = world.state.registrations[name]
        async with LtiClient(reg) as client:
            snaps = await asyncio.gather(*(
                extract_course(client, urls.lineitems_url(sandbox.base_url, state, ctx),
                               urls.memberships_url(sandbox.base_url, state, ctx)) for ctx in state.courses))
            assert client.in_flight_limit == 12
        seen = {k: n for (r, k), n in sandbox.counters.requests.items() if r == name}
    assert seen.get("throttled", 0) == 0 and client.stats.throttled == 0
    assert len(snaps) == 40 and sum(len(s.line_items) for s in snaps) == 40 * 4
    assert seen["line_items"] == 40 and seen["memberships"] == 40 and seen["results"] == 40 * 4


@pytest.mark.timeout(120)
async def test_the_sandbox_throttle_is_armed_for_a_client_configured_past_it(tmp_path):
    """The same sandbox refuses a client told to keep 24 in flight (so the test above can fail); that
    client learns the limit from the refusals and finishes the read."""
    world = build_world(3, "bench", clean=True, profile="canvas", courses=40, items=4, learners=8)
    with start_sandbox(world.state) as sandbox:
        config = world.export(tmp_path / "w", sandbox.base_url)
        from gradesync.settings import load_settings
        (name,) = world.state.registrations
        reg = load_settings(config).platform(name).model_copy(update={"max_concurrency": 24})
        sandbox.control.set_faults(name, latency_ms=LATENCY_MS, max_in_flight=12)
        state = world.state.registrations[name]
        async with LtiClient(reg, backoff_base=0.01, backoff_cap=0.05) as client:
            snaps = await asyncio.gather(*(
                extract_course(client, urls.lineitems_url(sandbox.base_url, state, ctx),
                               urls.memberships_url(sandbox.base_url, state, ctx)) for ctx in state.courses))
            assert client.in_flight_limit <= 12
        throttled = sandbox.counters.requests.get((name, "throttled"), 0)
    assert throttled >= 1 and client.stats.throttled == throttled
    assert len(snaps) == 40 and sum(len(s.line_items) for s in snaps) == 40 * 4
