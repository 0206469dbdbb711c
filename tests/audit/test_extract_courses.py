"""extract_courses: every course read, each with its retries, at most COURSES_PER_SLOT × the client's
in-flight limit at once (issue 13: starting a whole batch at once held the event loop before the first
requests went out)."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from gradesync.audit import extract
from gradesync.diagnosis.inputs import CourseSnapshot
from lti_client import LtiError
from lti_client.types import ErrorKind, LtiErrorInfo

pytestmark = pytest.mark.anyio


async def test_courses_start_a_few_at_a_time_and_all_are_read(monkeypatch):
    running = peak = 0

    async def fake_extract(client, lineitems_url, memberships_url, wanted=None):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        if lineitems_url == "li-7":
            raise LtiError(LtiErrorInfo(ErrorKind.auth, 401, None, "tool removed", lineitems_url))
        return CourseSnapshot(line_items=[], results={}, members=[])

    monkeypatch.setattr(extract, "extract_course", fake_extract)
    client = SimpleNamespace(in_flight_limit=3)
    courses = [(f"ctx-{i}", f"li-{i}", f"m-{i}") for i in range(40)]
    snaps = await extract.extract_courses(client, courses, label="canvas")
    assert list(snaps) == [c[0] for c in courses]
    assert peak == extract.COURSES_PER_SLOT * 3
    assert snaps["ctx-7"].error is not None and snaps["ctx-7"].error.status == 401
    assert all(s.error is None for ctx, s in snaps.items() if ctx != "ctx-7")
