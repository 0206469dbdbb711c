"""Cross-course distractors that must NOT become findings (issue 10 §4): each one looks like a gap to
a rule that reads the tool's records too simply.

- a retake: a learner did the same activity in an earlier course *and* in a later one, each in sync
  in its own course — a course counts the completion launched from it, never "the latest anywhere";
- a roster learner with no identity who did nothing (their e-mail even has an idle manual account);
- a teacher's grade equal to the tool's score (a person graded, but the value is right: no gap);
- a tool-created line item (no `resourceLinkId`) that the tool's passbacks for the link target, with
  one logged post that carries no resource link at all: its cells are in sync, not `link_not_graded`.
"""
from __future__ import annotations

from datetime import timedelta

from sandbox_lms.worlds.answers import Outcome
from sandbox_lms.worlds.builder import CourseBuild, Workbench
from sandbox_lms.worlds.course import add_link, score_for
from sandbox_lms.worlds.model import Completion


def add_distractors(wb: Workbench, courses: list[CourseBuild]) -> None:
    """Plant the distractors into a registration's courses that no course-level case owns."""
    usable = [c for c in courses if not c.course_level and c.links and c.anchor is not None]
    if not usable:
        return
    first = usable[0]
    _unlinked_idle_learner(wb, first)
    _teacher_grade_equal_to_tool_score(wb, first)
    _tool_created_line_item(wb, usable[-1])
    if len(usable) >= 2:
        _retake(wb, first, max(usable[1:], key=lambda c: c.ends_at))


def _unlinked_idle_learner(wb: Workbench, course: CourseBuild) -> None:
    member = wb.unlinked_learner(course)
    wb.new_account(member.email.lower(), member.name, "manual")     # opened, never used


def _teacher_grade_equal_to_tool_score(wb: Workbench, course: CourseBuild) -> None:
    gl = course.links[-1]
    cell = gl.item.results.get(course.anchor.lms_user_id) if gl.item else None
    if cell is None or cell.result_score is None:
        return
    wb.manual_grade(course, gl, course.anchor, cell.result_score, cell.stored_at + timedelta(days=1))


def _tool_created_line_item(wb: Workbench, course: CourseBuild) -> None:
    gl = add_link(wb, course, graded=True, with_item=True, position=0.7, label="Project (tool-created column)")
    assert gl.item is not None
    gl.item.resource_link_id = None          # created by the tool through AGS, not bound to the link (§2.2, §7 #25)
    takers = [p for p in course.learners if p is not course.idle][:3]
    for p in takers:
        wb.in_sync(course, gl, p, score_for(wb, gl))
    if takers:
        # A post the tool logged without a resource link (e.g. from a course-level sync job): kept, and
        # it belongs to the item's cell through its line_item_id.
        comp = wb.records.completions[(takers[0].account_id, gl.link.activity_id)]
        wb.post(course, gl, takers[0], comp.score_given, comp.completed_at + timedelta(seconds=1),
                Outcome.accepted, no_link=True)
        wb.records.passbacks[wb.key(course, gl, takers[0])].sort(key=lambda p: p.timestamp)
        last = wb.records.passbacks[wb.key(course, gl, takers[0])][-1]
        # keep the cell showing the tool's final (same) score
        gl.item.results[takers[0].lms_user_id].stored_at = max(gl.item.results[takers[0].lms_user_id].stored_at,
                                                               last.timestamp.replace(microsecond=0))


def _retake(wb: Workbench, earlier: CourseBuild, later: CourseBuild) -> None:
    """The anchor of `earlier` takes the same activity again in `later` (same platform, same LMS user),
    later in time and with another score; both cells are in sync in their own course."""
    person = earlier.anchor
    gl = earlier.links[0]
    first = wb.records.completions.get((person.account_id, gl.link.activity_id))
    if first is None or person.member is None:
        return
    again = add_link(wb, later, graded=True, with_item=True, position=0.9, activity_id=gl.link.activity_id,
                     activity_max=gl.activity_max, label=f"{gl.link.title} (retake)")
    at = wb.completion_time(later, again)
    if at <= first.completed_at:
        return                                # keep it a real "later elsewhere" case, or none at all
    later.record.members.append(person.member)
    score = float(round(gl.activity_max * 0.55)) if first.score_given != round(gl.activity_max * 0.55) \
        else float(round(gl.activity_max * 0.95))
    # Not through wb.complete: the (account, activity) slot already holds the earlier course's completion.
    wb.records.extra_completions.append(Completion(person.account_id, gl.link.activity_id, score, gl.activity_max,
                                                   at, later.reg.name, later.tool.context_id,
                                                   again.link.resource_link_id))
    wb.post(later, again, person, score, at + wb.jitter(3, 240), Outcome.accepted)
    wb.expected.add(wb.key(later, again, person))
