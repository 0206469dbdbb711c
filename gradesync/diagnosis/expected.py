"""Which grades are expected in a course, and which of them the LMS lacks (design.md; rules doc)."""
from __future__ import annotations

from dataclasses import dataclass

from lti_client.types import LineItem, Member, Result

from .inputs import Completion, CourseRecords, CourseSnapshot, LinkInfo, PlatformRecords

TOLERANCE = 0.005   # 0.5 % of the maximum, on scores normalised by their maxima


@dataclass(frozen=True)
class ExpectedGrade:
    """One row of the expected-grade frame: a learner × graded activity that should be in the LMS."""
    platform: str
    context_id: str
    resource_link_id: str
    activity_id: str
    line_item_id: str
    lms_user_id: str
    completion: Completion            # the chosen completion (the work)
    result: Result | None             # the LMS result for (line item, user), if any

    @property
    def account_id(self) -> str:
        return self.completion.account_id

    @property
    def tool_norm(self) -> float:
        return self.completion.normalised

    @property
    def lms_norm(self) -> float | None:
        r = self.result
        if r is None or r.result_score is None:
            return None
        return r.result_score / (r.result_maximum or 1.0)

    @property
    def in_sync(self) -> bool:
        lms = self.lms_norm
        return lms is not None and abs(lms - self.tool_norm) <= TOLERANCE


def line_item_for_link(line_items: list[LineItem], resource_link_id: str) -> LineItem | None:
    """The first line item (platform order) bound to the resource link — on Canvas only the first
    line item of an assignment drives the gradebook (lti-platform-behavior.md §2.2)."""
    return next((li for li in line_items if li.resource_link_id == resource_link_id), None)


def choose_completion(rec: PlatformRecords, activity_id: str, lms_user_id: str) -> Completion | None:
    """The linked account's own completion, else the most recent one of a same-email account."""
    by_account = rec.completions.get(activity_id)
    if not by_account:
        return None
    linked = rec.account_by_lms_user.get(lms_user_id)
    if linked is None:
        return None
    own = by_account.get(linked)
    if own is not None:
        return own
    others = [by_account[a] for a in rec.same_person_accounts(linked) if a in by_account]
    return max(others, key=lambda c: c.completed_at) if others else None


def expected_lms_users(rec: PlatformRecords, course: CourseRecords, link: LinkInfo,
                       learners: list[Member]) -> list[str]:
    """(a) roster learners who did the work in any of their accounts ∪ (b) linked accounts whose
    completion carries this course's context. Ordered, without duplicates."""
    ctx = course.course.context_id
    users: dict[str, None] = {}
    for m in learners:
        if choose_completion(rec, link.activity_id, m.user_id) is not None:
            users[m.user_id] = None
    for account_id in rec.completed_in_context.get((ctx, link.activity_id), ()):
        user = rec.lms_user_by_account.get(account_id)
        if user is not None:
            users[user] = None
    return list(users)


def expected_grades(rec: PlatformRecords, course: CourseRecords, snap: CourseSnapshot) -> list[ExpectedGrade]:
    """Every expected grade of the course's graded links that have a line item."""
    learners = [m for m in snap.members if m.is_learner]
    rows: list[ExpectedGrade] = []
    for link in course.links:
        if not link.graded:
            continue
        item = line_item_for_link(snap.line_items, link.resource_link_id)
        if item is None:
            continue
        results = {r.user_id: r for r in snap.results.get(item.id, []) if r.user_id}
        for user in expected_lms_users(rec, course, link, learners):
            completion = choose_completion(rec, link.activity_id, user)
            if completion is None:
                continue   # (b) guarantees one; (a) checked it already
            rows.append(ExpectedGrade(course.course.platform, course.course.context_id, link.resource_link_id,
                                      link.activity_id, item.id, user, completion, results.get(user)))
    return rows
