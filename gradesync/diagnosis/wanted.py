"""Which line items' results one course's diagnosis can use (issue 12 goal 4: read less, miss nothing).

Results are read only for line items an expected grade or a tool passback may concern; line items and
the roster are still read for every course (link_not_graded and not_learner need them). Built from the
same facts as the diagnosis (expected.py), before the roster is known, so it errs on reading:

- a graded link whose activity has any completion at all: a roster learner's email may find it in
  any account (design.md "Which grades are expected"), so any completion can be expected here;
- every resource link and line item the course's passbacks name (the link's item may be the one the
  tool posted to, not the one bound to the link: `line_item_for_link`).

A line item outside both has no expected grade, so no gap, whatever its results say. One rule reads
others' results: item_not_active's heuristic asks whether *other* items of the course have results;
`rest_needed` says when that question is asked, and the batch then reads the rest too.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass

from lti_client.types import LineItem

from .course import ITEM_HEURISTIC_MIN_EXPECTED, inactive_refusal
from .expected import expected_grades
from .inputs import CourseRecords, CourseSnapshot, PlatformRecords


@dataclass(frozen=True)
class ResultsWanted:
    """The line items of one course whose results are read: bound to one of `resource_link_ids`, or
    one of `line_item_ids`. Call it with a line item."""
    resource_link_ids: frozenset[str]
    line_item_ids: frozenset[str]

    def __call__(self, item: LineItem) -> bool:
        return item.id in self.line_item_ids or (item.resource_link_id is not None
                                                 and item.resource_link_id in self.resource_link_ids)


def results_wanted(course: CourseRecords, activities_with_work: Collection[str]) -> ResultsWanted:
    """The line items whose results `course`'s diagnosis may need (see the module docstring), known
    before extraction: `activities_with_work` = the activities with at least one completion
    (gradesync/audit/records.py reads them by the batch's activities)."""
    links = {link.resource_link_id for link in course.links
             if link.graded and link.activity_id in activities_with_work}
    links |= {p.resource_link_id for p in course.passbacks if p.resource_link_id}
    items = frozenset(p.line_item_id for p in course.passbacks if p.line_item_id)
    return ResultsWanted(frozenset(links), items)


def activities_with_work(platform: PlatformRecords) -> set[str]:
    """The same set from records already loaded."""
    return {activity for activity, done in platform.completions.items() if done}


def rest_needed(platform: PlatformRecords, course: CourseRecords, snap: CourseSnapshot) -> bool:
    """With the wanted results read (`snap.results_not_read` = the others): whether some item looks
    inactive by item_not_active's heuristic (enough expected grades, none present). Whether it is
    depends on the other items' results, and the finding counts them: read them all
    (gradesync/audit/extract.py `read_rest`). Needs the roster, so it is asked after extraction."""
    if not snap.results_not_read:
        return False
    rows = expected_grades(platform, course, snap)
    expected = Counter(g.resource_link_id for g in rows)          # per link, as the heuristic counts
    present = Counter(g.resource_link_id for g in rows if g.lms_norm is not None)
    item_of = {g.resource_link_id: g.line_item_id for g in rows}
    return any(n >= ITEM_HEURISTIC_MIN_EXPECTED and not present[rl]
               # a refusal as inactive decides before the heuristic is asked
               and inactive_refusal(platform.vendor, course.passbacks, rl, item_of[rl]) is None
               for rl, n in expected.items())


def needs_rest(platforms: dict[str, PlatformRecords], courses: dict[tuple[str, str], CourseRecords],
               snapshots: dict[tuple[str, str], CourseSnapshot]) -> list[tuple[str, str]]:
    """The courses of a batch whose other results must be read too (`rest_needed`)."""
    return [k for k, snap in snapshots.items() if snap.error is None and k in courses
            and rest_needed(platforms[k[0]], courses[k], snap)]
