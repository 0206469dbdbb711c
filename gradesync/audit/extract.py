"""Extract one course from the LMS through the LTI client: line items, their results, the roster."""
from __future__ import annotations

import asyncio

from lti_client import LtiClient, LtiError
from lti_client.types import ErrorKind, LtiErrorInfo

from gradesync.diagnosis.inputs import CourseSnapshot


async def extract_course(client: LtiClient, lineitems_url: str, memberships_url: str) -> CourseSnapshot:
    """Read everything the diagnosis needs for one course. Raises the first LtiError; sibling requests
    are cancelled (TaskGroup) so a failed course stops spending the platform's request budget."""
    try:
        async with asyncio.TaskGroup() as tg:
            items_task = tg.create_task(client.list_line_items(lineitems_url))
            members_task = tg.create_task(client.list_members(memberships_url))
        line_items = items_task.result()
        async with asyncio.TaskGroup() as tg:
            result_tasks = [tg.create_task(client.list_results(li.id)) for li in line_items]
    except* LtiError as group:
        raise group.exceptions[0] from None
    return CourseSnapshot(line_items=line_items,
                          results={li.id: t.result() for li, t in zip(line_items, result_tasks)},
                          members=members_task.result())


def failed_snapshot(err: BaseException) -> CourseSnapshot:
    """The snapshot of a course whose extraction failed for good: carries the error, no data."""
    if isinstance(err, LtiError):
        return CourseSnapshot(error=err.info)
    return CourseSnapshot(error=LtiErrorInfo(ErrorKind.transient, None, None,
                                             f"{type(err).__name__}: {err}"[:300], None))
