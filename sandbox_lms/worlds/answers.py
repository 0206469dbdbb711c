"""What the platform answered to each score POST of the tool's passback log.

The answer is produced by the sandbox's own vendor profile (`sandbox_lms.profiles`), the one place
that knows each platform's status codes and bodies (lti-platform-behavior.md §4.2–4.6), applied to
the world's final state — so the log reads exactly as a tool talking to that platform would hold it,
and a log row the platform could not have produced fails loudly instead of being written.
"""
from __future__ import annotations

from datetime import datetime
from enum import Enum

from sandbox_lms.gradebook import FULLY_GRADED, IncomingScore
from sandbox_lms.profiles import get_profile
from sandbox_lms.state import CourseRecord, LineItemRecord, Registration, ResultRecord


class Outcome(str, Enum):
    accepted = "accepted"
    stale = "stale"                  # refused: timestamp older than the stored one
    inactive = "inactive"            # refused: item unpublished / not available
    not_gradable = "not_gradable"    # refused: user not a student / not in the course
    server_error = "server_error"    # 5xx: the platform failed, nothing stored
    timed_out = "timed_out"          # no answer reached the tool: logged with an empty status


class ImpossibleAnswer(AssertionError):
    """The world logged a refusal that its platform would not give in this state (a builder bug)."""


def answer(base_url: str, reg: Registration, course: CourseRecord, item: LineItemRecord, user_id: str,
           outcome: Outcome, *, score_given: float, score_maximum: float, timestamp: datetime,
           stored_at: datetime | None = None) -> tuple[int, str]:
    """(status_code, body) the platform of `reg` gives a score POST with this outcome."""
    if outcome is Outcome.server_error:
        return 503, "Service Unavailable"                      # the sandbox's own 5xx (app.py)
    if outcome is Outcome.timed_out:
        raise ImpossibleAnswer("a timed-out POST has no answer: World.tool_records logs it without one")
    profile = get_profile(reg.profile)
    if outcome is Outcome.accepted:
        resp = profile.score_accepted(base_url, reg, course, item, user_id)
    elif outcome is Outcome.inactive:
        resp = profile.inactive_refusal(item)
    elif outcome is Outcome.not_gradable:
        resp = profile.user_refusal(reg, course, user_id)
    else:
        lost_to = ResultRecord(user_id=user_id, result_score=0.0, result_maximum=item.score_maximum,
                               stored_at=stored_at or timestamp)
        sent = IncomingScore(user_id=user_id, score_given=score_given, score_maximum=score_maximum,
                             timestamp=timestamp, activity_progress="Completed", grading_progress=FULLY_GRADED)
        resp = profile.stale(item, lost_to, sent)
    if resp is None or not hasattr(resp, "status_code"):
        raise ImpossibleAnswer(f"{reg.profile} would not refuse a score as {outcome.value} here "
                               f"({course.context_id}, item {item.id}, user {user_id})")
    return resp.status_code, bytes(resp.body).decode("utf-8")
