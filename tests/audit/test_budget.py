"""One LMS budget per developer key (gradesync/budget.py) against a real Prefect server: the key's two
global concurrency limits, nightly work capped below the key's limit, an on-demand audit served at once
with the whole key when it is free and with the reserved share while the night holds the rest."""
from __future__ import annotations

import asyncio
import time

import pytest

from gradesync.budget import limit_names, lms_slots, nightly_slots, reserved_slots
from lti_client.registration import PlatformRegistration

pytestmark = pytest.mark.slow


def _reg(tmp_path, name: str, limit: int) -> PlatformRegistration:
    key = tmp_path / "k.pem"
    key.write_text("not read by these tests")
    return PlatformRegistration(name=name, vendor="canvas", issuer="https://lms.example", client_id="c",
                                token_url="https://lms.example/token", private_key_file=key, key_id="k",
                                allowed_hosts=["lms.example"], max_concurrency=limit)


def test_reserved_share_arithmetic():
    assert (reserved_slots(12, 0.2), nightly_slots(12, 0.2)) == (3, 9)
    assert (reserved_slots(4, 0.2), nightly_slots(4, 0.2)) == (1, 3)
    assert (reserved_slots(2, 0.5), nightly_slots(2, 0.5)) == (1, 1)
    assert (reserved_slots(1, 0.2), nightly_slots(1, 0.2)) == (0, 1)    # one slot: everyone queues for it


def test_the_key_is_shared_between_the_night_and_a_support_ticket(tmp_path, prefect_env, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_API_URL", prefect_env["PREFECT_API_URL"])
    reg = _reg(tmp_path, f"budget-{time.monotonic_ns()}", 10)     # L = 10, R = 2, nightly ≤ 8

    async def scenario() -> dict:
        seen: dict = {}
        async with lms_slots(reg, "on-demand", share=0.2) as idle_key:
            seen["on_demand_idle"] = idle_key                   # nobody else: the whole key
        night_holds = asyncio.Event()
        night_may_end = asyncio.Event()

        async def night() -> None:
            async with lms_slots(reg, "nightly", share=0.2) as n:
                seen["nightly"] = n
                night_holds.set()
                await night_may_end.wait()

        async def second_night() -> None:
            await night_holds.wait()
            t0 = time.monotonic()
            async with lms_slots(reg, "nightly", share=0.2) as n:
                seen["second_nightly"] = (n, time.monotonic() - t0)

        async def ticket() -> None:
            await night_holds.wait()
            t0 = time.monotonic()
            async with lms_slots(reg, "on-demand", share=0.2) as n:
                seen["on_demand_busy"] = (n, time.monotonic() - t0)
            await asyncio.sleep(1.0)
            night_may_end.set()                                 # the night ends after the ticket was served

        await asyncio.gather(night(), second_night(), ticket())
        async with get_client() as c:
            base, bulk = limit_names(reg.name)
            seen["limits"] = ((await c.read_global_concurrency_limit_by_name(base)).limit,
                              (await c.read_global_concurrency_limit_by_name(bulk)).limit)
        return seen

    with temporary_settings(updates={PREFECT_API_URL: prefect_env["PREFECT_API_URL"]}):
        seen = asyncio.run(scenario())
    assert seen["limits"] == (10, 8)
    assert seen["on_demand_idle"] == 10
    assert seen["nightly"] == 8
    slots, waited = seen["on_demand_busy"]
    assert slots == 2 and waited < 30                          # the reserved share, without waiting for the night
    slots, waited = seen["second_nightly"]
    assert slots == 8 and waited >= 1.0                        # a second nightly holder waited for the first
