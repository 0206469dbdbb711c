"""Resyncs count against the developer key's LMS budget (issue 12 goal 2): each platform's send holds
slots of the key's two Prefect global concurrency limits (gradesync.budget) and keeps its requests in
flight within them. Through the `resync` flow, a real Prefect server and the sandbox LMS (moodle: a
key of 4 in flight by default, 1 reserved for on-demand work, 3 for the night)."""
from __future__ import annotations

import pytest

import models as m
from gradesync.budget import limit_names, lms_slots, nightly_slots
from tests.resync.world_helpers import RunTally, in_prefect, served_world, unscored_cells

S = m.ResyncState
pytestmark = pytest.mark.slow
TASKS = 6                 # more than the night's share of the key, so the cap decides the parallelism


@pytest.fixture
def moodle(tmp_path, migrated_db_url, prefect_env):
    with served_world(tmp_path, migrated_db_url, profiles=("moodle",), clean=True,
                      prefect_api=prefect_env["PREFECT_API_URL"]) as served:
        cells = unscored_cells(served.world, served.sandbox.base_url, "moodle-main", TASKS)
        served.add_cells(cells)
        # Slow enough answers that the sends overlap; the peak then shows the cap, not the timing.
        served.sandbox.control.set_faults(cells[0].platform, latency_ms=80)
        served.sandbox.counters.reset()
        # A fresh budget for the key: a process another test killed may hold slots until its lease expires.
        in_prefect(served.prefect_api, lambda: _drop_limits(cells[0].platform))
        yield served


async def _drop_limits(platform: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    async with get_client() as c:
        for name in limit_names(platform):
            try:
                await c.delete_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                pass


async def _limits(platform: str) -> dict[str, tuple[int, int]]:
    """(limit, active slots) of the key's two limits."""
    from prefect.client.orchestration import get_client

    async with get_client() as c:
        found = [await c.read_global_concurrency_limit_by_name(n) for n in limit_names(platform)]
    return {gcl.name: (gcl.limit, gcl.active_slots) for gcl in found}


def _resync(served, budget: str):
    from flows.resync import resync_pending

    return resync_pending(config=str(served.config), worker="budget-test", budget=budget)


def test_a_nightly_resync_holds_the_nights_share_of_the_key_and_stays_within_it(moodle):
    reg = moodle.settings.platform("moodle-main")
    key, share = reg.key_in_flight_limit, moodle.settings.audit.on_demand_reserved_share
    night = nightly_slots(key, share)
    assert night < key                     # the night's share is smaller than the client's own limit

    async def run():
        return RunTally.of(await _resync(moodle, "nightly")), await _limits(reg.name)

    tally, limits = in_prefect(moodle.prefect_api, run)
    assert tally.outcomes["verified"] == TASKS, tally
    base, bulk = limit_names(reg.name)
    assert limits == {base: (key, 0), bulk: (night, 0)}        # the key's values; the lease was given back
    peak = moodle.sandbox.counters.peak_in_flight[reg.name]
    assert 2 <= peak <= night, peak                            # in parallel, never beyond the lease


def test_an_on_demand_resync_while_the_night_holds_its_share_takes_only_the_reserved_slot(moodle):
    reg = moodle.settings.platform("moodle-main")
    key, share = reg.key_in_flight_limit, moodle.settings.audit.on_demand_reserved_share

    async def run():
        # A nightly batch of another worker holds the night's whole share of this key meanwhile.
        async with lms_slots(reg, "nightly", share=share) as night:
            return night, RunTally.of(await _resync(moodle, "on-demand"))

    night, tally = in_prefect(moodle.prefect_api, run)
    assert night == nightly_slots(key, share) and tally.outcomes["verified"] == TASKS, tally
    assert moodle.sandbox.counters.peak_in_flight[reg.name] == key - night     # the reserved share, no more
