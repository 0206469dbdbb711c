"""Which grades are expected in a course, and which of them the LMS lacks (design.md; rules doc)."""
from __future__ import annotations

from dataclasses import dataclass

from lti_client.types import LineItem, Member, Result

from .inputs import Completion, CourseRecords, CourseSnapshot, LinkInfo, Passback, PlatformRecords

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



@dataclass(frozen=True)
class LinkItem:
    """The line item of a link, or why it cannot be told (the link's grades are then unverified)."""
    item: LineItem | None
    unverified: str | None = None


def targeted_items(passbacks: list[Passback], resource_link_id: str) -> list[str]:
    """Line item ids the tool's passbacks for the link posted to: accepted ones first, latest first."""
    mine = [p for p in passbacks if p.resource_link_id == resource_link_id and p.line_item_id]
    mine.sort(key=lambda p: (p.accepted, p.timestamp), reverse=True)
    out: list[str] = []
    for p in mine:
        if p.line_item_id not in out:
            out.append(p.line_item_id)
    return out


def line_item_for_link(line_items: list[LineItem], resource_link_id: str,
                       passbacks: list[Passback] | None = None) -> LinkItem:
    """The link's line item (design.md): the one whose `resourceLinkId` is the link; else the one the
    tool's passbacks for the link targeted. Several bound to the link → the one the tool posts to,
    never "first listed" (on Canvas only the assignment's first line item drives the gradebook, §2.2,
    and listing order does not say which that is); with no passback to tell, the link is unverified."""
    bound = [li for li in line_items if li.resource_link_id == resource_link_id]
    if len(bound) == 1:
        return LinkItem(bound[0])
    pool = {li.id: li for li in (bound or line_items)}
    for item_id in targeted_items(passbacks or [], resource_link_id):
        if item_id in pool:
            return LinkItem(pool[item_id])
    if bound:
        return LinkItem(None, f"{len(bound)} line items are bound to this link and the tool's passback log "
                              "does not say which one it posts to")
    return LinkItem(None)


def choose_completion(rec: PlatformRecords, activity_id: str, lms_user_id: str, context_id: str,
                      roster_email: str | None = None) -> Completion | None:
    """The completion that counts for (learner, activity) in this course: the linked account's own,
    else another account of the same person (same email as the linked account, or as the roster's
    NRPS email when no account is linked: a learner who never launched the tool from the LMS).
    Within an account, the completion launched from this course wins, else the latest."""
    linked = rec.account_by_lms_user.get(lms_user_id)
    if linked is not None:
        own = rec.completion_for_course(activity_id, linked, context_id)
        if own is not None:
            return own
        others = rec.same_person_accounts(linked, roster_email)
    else:
        # An account linked to another LMS user of this platform holds that user's grade, not this one's.
        others = [a for a in rec.same_person_accounts(None, roster_email) if a not in rec.lms_user_by_account]
    found = [c for c in (rec.completion_for_course(activity_id, a, context_id) for a in others) if c is not None]
    if not found:
        return None
    here = [c for c in found if c.platform == rec.platform and c.context_id == context_id]
    return max(here or found, key=lambda c: c.completed_at)


def expected_lms_users(rec: PlatformRecords, course: CourseRecords, link: LinkInfo,
                       learners: list[Member]) -> list[tuple[str, str | None]]:
    """(a) roster learners who did the work in any of their accounts ∪ (b) linked accounts whose
    completion carries this course's context: (lms_user_id, roster email), ordered, no duplicates."""
    ctx = course.course.context_id
    users: dict[str, str | None] = {}
    for m in learners:
        if choose_completion(rec, link.activity_id, m.user_id, ctx, m.email) is not None:
            users[m.user_id] = m.email
    for account_id in rec.completed_in_context.get((ctx, link.activity_id), ()):
        user = rec.lms_user_by_account.get(account_id)
        if user is not None and user not in users:
            users[user] = None
    return list(users.items())


def expected_grades(rec: PlatformRecords, course: CourseRecords, snap: CourseSnapshot) -> list[ExpectedGrade]:
    """Every expected grade of the course's graded links whose line item is known and was read."""
    learners = [m for m in snap.members if m.is_learner]
    emails = {m.user_id: m.email for m in snap.members}
    ctx = course.course.context_id
    rows: list[ExpectedGrade] = []
    for link in course.links:
        if not link.graded:
            continue
        item = line_item_for_link(snap.line_items, link.resource_link_id, course.passbacks).item
        if item is None or item.id in snap.item_errors or item.id in snap.results_not_read:
            continue
        results = {r.user_id: r for r in snap.results.get(item.id, []) if r.user_id}
        for user, email in expected_lms_users(rec, course, link, learners):
            completion = choose_completion(rec, link.activity_id, user, ctx, email or emails.get(user))
            if completion is None:
                continue   # (b) guarantees one; (a) checked it already
            rows.append(ExpectedGrade(course.course.platform, ctx, link.resource_link_id,
                                      link.activity_id, item.id, user, completion, results.get(user)))
    return rows
