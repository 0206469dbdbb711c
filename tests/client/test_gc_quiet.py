"""lti_client.gc_quiet: while a client is open only young collections run; the process's thresholds come
back when the last one closes (issue 13: a full collection stalls every request in flight)."""
from __future__ import annotations

import gc

import pytest

from lti_client import LtiClient, gc_quiet

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def known_thresholds():
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_nested_holders_restore_the_thresholds_at_the_last_release():
    gc_quiet.hold()
    gc_quiet.hold()
    young, *older = gc.get_threshold()
    assert young == 700 and min(older) > 10**6
    gc_quiet.release()
    assert gc.get_threshold()[1] > 10**6               # one holder still open
    gc_quiet.release()
    assert gc.get_threshold() == (700, 10, 10)
    gc_quiet.release()                                  # one too many: harmless
    assert gc.get_threshold() == (700, 10, 10)


def test_a_process_that_turned_collection_off_is_left_as_it_was():
    gc.set_threshold(0, 10, 10)
    gc_quiet.hold()
    assert gc.get_threshold() == (0, 10, 10)
    gc_quiet.release()
    assert gc.get_threshold() == (0, 10, 10)


async def test_an_open_client_holds_and_its_close_releases(make_reg):
    async with LtiClient(make_reg()) as first:
        assert gc.get_threshold()[2] > 10**6
        async with LtiClient(make_reg()):
            pass
        assert gc.get_threshold()[2] > 10**6           # `first` is still open
        await first.aclose()                            # closed twice (explicitly, then by `async with`)
        assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)
