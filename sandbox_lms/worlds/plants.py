"""Planted cases: each function decides one finding first, then builds exactly the data that
produces it under docs/diagnosis-rules.md — one cause per case, nothing computed by diagnosis code.

Learner cases take a "free" learner's in-sync cell (never the course's anchor, whose results keep
every item's heuristic quiet) and rebuild that single cell; item cases add a link of their own.
"""
from __future__ import annotations

from datetime import timedelta

from sandbox_lms.state import TEACHING_ASSISTANT
from sandbox_lms.worlds.answers import Outcome
from sandbox_lms.worlds.builder import CourseBuild, GradedLink, Person, Workbench
from sandbox_lms.worlds.course import add_link, score_for
from sandbox_lms.worlds.model import PlantedFinding


def _finding(category: str, course: CourseBuild, gl: GradedLink | None = None, person: Person | None = None,
             account_id: str | None = None, note: str = "") -> PlantedFinding:
    return PlantedFinding(category, course.reg.name, course.tool.context_id,
                          gl.link.resource_link_id if gl else None,
                          person.lms_user_id if person else None,
                          account_id or (person.account_id if person else None), note)


def _different(wb: Workbench, gl: GradedLink, *avoid: float, above: float | None = None) -> float:
    """A score on the activity's scale at least 10 % of the maximum away from every `avoid`."""
    m = gl.activity_max
    step = max(1.0, m / 10)
    lo = (above + step) if above is not None else 0.0
    choices = [float(s) for s in range(int(lo), int(m) + 1)
               if all(abs(s - a) >= step for a in avoid)]
    return wb.rng.choice(choices)


def _take_cell(wb: Workbench, course: CourseBuild, *, earliest: bool = False) -> tuple[Person, GradedLink]:
    """A free learner and one of the normal links they completed (in sync until the plant changes it)."""
    person = course.free.pop()
    done = [gl for gl in course.links if (person.account_id, gl.link.activity_id) in wb.records.completions]
    gl = done[0] if earliest else wb.rng.choice(done)
    return person, gl


def _others(course: CourseBuild, n: int, wb: Workbench) -> list[Person]:
    """n active learners of the course (new ones join when the roster is too small)."""
    pool = [p for p in course.learners if p is not course.idle]
    while len(pool) < n:
        pool.append(wb.new_learner(course))
        course.learners.append(pool[-1])
    return wb.rng.sample(pool, n)


# --- course level ------------------------------------------------------------------------------
def grades_not_accepted(wb: Workbench, course: CourseBuild) -> None:
    course.course_level = True
    wb.plant(_finding("grades_not_accepted", course, note=(
        f"{course.reg.profile}: the tool's score scope is not granted to this registration "
        + ("(Canvas refuses the token request: 400 invalid_scope)" if course.reg.profile == "canvas"
           else "(the token is granted without the score scope)"))))


def course_unreachable(wb: Workbench, course: CourseBuild, variant: str) -> None:
    course.course_level = True
    if variant == "concluded":
        course.record.concluded = True
        note = "Canvas course concluded: AGS and NRPS answer 404"
    else:
        course.record.tool_removed = True
        note = "tool removed from the course: service calls answer 401"
    wb.plant(_finding("course_unreachable", course, note=note))


# --- item level --------------------------------------------------------------------------------
def link_not_graded(wb: Workbench, course: CourseBuild, variant: str) -> None:
    gl = add_link(wb, course, graded=True, with_item=False, position=0.55)
    takers = _others(course, 2, wb) if variant == "completed" else []
    for p in takers:
        wb.complete(course, p.account_id, gl, score_for(wb, gl), wb.completion_time(course, gl))
    wb.plant(_finding("link_not_graded", course, gl, note=(
        f"graded link without a line item; {len(takers)} learner(s) completed it")))


def item_not_active(wb: Workbench, course: CourseBuild, variant: str) -> None:
    refused = variant == "refused"
    gl = add_link(wb, course, graded=True, with_item=True, position=0.6, active=not refused)
    for p in _others(course, 4 if not refused else 3, wb):
        score = score_for(wb, gl)
        at = wb.completion_time(course, gl)
        wb.complete(course, p.account_id, gl, score, at)
        if refused:
            wb.post(course, gl, p, score, at + wb.jitter(3, 240), Outcome.inactive)
        key = wb.key(course, gl, p)
        wb.expected.add(key)
        wb.gaps.add(key)
    if refused:
        note = ("Canvas assignment unpublished: every passback answered 422 (errors array)"
                if course.reg.profile == "canvas" else "column not Available: every passback refused")
    else:
        note = "4 learners completed, no result and no passback, other items of the course have results"
    wb.plant(_finding("item_not_active", course, gl, note=note))


# --- learner level -----------------------------------------------------------------------------
def not_learner(wb: Workbench, course: CourseBuild, variant: str) -> None:
    reg = course.reg
    gl = wb.rng.choice(course.links)
    if variant == "ta":
        person = wb.new_staff(course, reg, TEACHING_ASSISTANT)
        outcome, note = Outcome.not_gradable, "a teaching assistant completed the activity from the course"
    elif variant == "inactive":
        person = wb.new_learner(course, status="Inactive")
        outcome, note = None, "learner enrolment Inactive (Canvas NRPS lists Active members only)"
    else:
        person = wb.new_person(reg, None)
        outcome, note = Outcome.not_gradable, "linked user is not on the course roster (dropped)"
    score = score_for(wb, gl)
    at = wb.completion_time(course, gl)
    wb.complete(course, person.account_id, gl, score, at)
    if outcome is not None:
        wb.post(course, gl, person, score, at + wb.jitter(3, 240), outcome)
    wb.plant(_finding("not_learner", course, gl, person, note=note), wb.key(course, gl, person))


def duplicate_account(wb: Workbench, course: CourseBuild, variant: str) -> None:
    person, gl = _take_cell(wb, course)
    wb.reset_cell(course, gl, person)
    note = "work done in a manual account with the same e-mail (other case)"
    if variant == "roster_email":
        # The linked account kept an old address; the LMS roster (NRPS email) has the current one, which
        # the manual account was opened with: the roster's email ties them (design.md, issue 10 §2).
        account = next(a for a in wb.records.accounts if a.account_id == person.account_id)
        account.email = f"{person.name.split()[0].lower()}.{account.account_id.lower()}@alumni.example.org"
        note = "work in a manual account opened with the roster's e-mail; the linked account has an old one"
    manual = wb.new_account(person.email.lower(), person.name, "manual")
    wb.complete(None, manual, gl, score_for(wb, gl), wb.completion_time(course, gl), context=None)
    wb.plant(_finding("duplicate_account", course, gl, person, account_id=manual, note=note),
             wb.key(course, gl, person))


def launched_outside_course(wb: Workbench, course: CourseBuild, variant: str,
                            siblings: list[CourseBuild]) -> None:
    if variant == "never_launched":
        # A roster learner who never launched the tool from the LMS (no identity): their work sits in a
        # manual account opened with the roster's email (NRPS `email`), found case-insensitively (issue 10 §2).
        gl = wb.rng.choice(course.links)
        member = wb.unlinked_learner(course)
        manual = wb.new_account(member.email.lower(), member.name, "manual")
        wb.complete(None, manual, gl, score_for(wb, gl), wb.completion_time(course, gl), context=None)
        wb.plant(PlantedFinding("launched_outside_course", course.reg.name, course.tool.context_id,
                                gl.link.resource_link_id, member.user_id, manual,
                                "never launched from the LMS: work in a manual account with the roster's e-mail"),
                 (course.reg.name, course.tool.context_id, gl.link.resource_link_id, member.user_id))
        return
    person, gl = _take_cell(wb, course)
    wb.reset_cell(course, gl, person)
    if variant == "other_course":
        other = wb.rng.choice([c for c in siblings if c is not course])
        # Canvas course-navigation launches carry resource_link_id == context_id (§2.2, §7 #13).
        rl = other.tool.context_id if course.reg.profile == "canvas" else wb.ids[course.reg.name].resource_link_id()
        context = (course.reg.name, other.tool.context_id, rl)
        note = f"launched from another course ({other.tool.context_id})"
    else:
        context = None
        note = "completed after a manual login (no launch context)"
    wb.complete(course, person.account_id, gl, score_for(wb, gl), wb.completion_time(course, gl), context=context)
    wb.plant(_finding("launched_outside_course", course, gl, person, note=note), wb.key(course, gl, person))


def outside_course_dates(wb: Workbench, course: CourseBuild, variant: str) -> None:
    person, gl = _take_cell(wb, course, earliest=variant == "after_item_end")
    wb.reset_cell(course, gl, person)
    if variant == "before_start":
        at = course.starts_at - timedelta(days=6) - wb.jitter(0, 86400)
        note = "completed before the course start date"
    elif variant == "after_item_end":
        assert gl.item is not None and gl.item.end_date_time is not None
        at = gl.item.end_date_time + timedelta(days=2) + wb.jitter(0, 86400)
        assert at < course.ends_at
        note = "completed after the line item's endDateTime (inside the course dates)"
    else:
        at = course.ends_at + timedelta(days=9) + wb.jitter(0, 86400)
        note = "completed after the course end date"
    wb.complete(course, person.account_id, gl, score_for(wb, gl), at.replace(microsecond=0))
    wb.plant(_finding("outside_course_dates", course, gl, person, note=note), wb.key(course, gl, person))


def _first_accepted(wb: Workbench, course: CourseBuild, gl: GradedLink, person: Person) -> tuple[float, object]:
    """Attempt 1, sent and accepted: (score, passback timestamp)."""
    c1 = (gl.due - timedelta(days=4) - wb.jitter(0, 86400)).replace(microsecond=0)
    c1 = max(c1, course.starts_at + timedelta(hours=12))
    s_old = float(round(gl.activity_max * wb.rng.uniform(0.3, 0.75)))
    p1 = c1 + wb.jitter(3, 240)
    wb.post(course, gl, person, s_old, p1, Outcome.accepted)
    return s_old, p1


def manual_grade_conflict(wb: Workbench, course: CourseBuild, variant: str) -> None:
    person, gl = _take_cell(wb, course)
    assert gl.item is not None
    ratio = gl.item.score_maximum / gl.activity_max
    if variant == "no_log":
        # The LMS holds an old score of the tool's, but the passback log no longer holds the cell (a
        # rotated or partial log): nothing proves the value is the tool's, so it may be a person's
        # (design.md manual_grade_conflict; issue 10 §1) and is never resent without approval.
        wb.reset_cell(course, gl, person)
        s_old, p1 = _first_accepted(wb, course, gl, person)
        wb.records.passbacks.pop(wb.key(course, gl, person), None)
        c2 = (p1 + timedelta(days=1) + wb.jitter(0, 3600)).replace(microsecond=0)
        wb.complete(course, person.account_id, gl, _different(wb, gl, s_old, above=s_old), c2)
        note = "the LMS shows a score the passback log does not hold (log rotated); the completion differs"
    elif variant == "stale":
        wb.reset_cell(course, gl, person)
        s_old, p1 = _first_accepted(wb, course, gl, person)
        c2 = (p1 + timedelta(days=1) + wb.jitter(0, 3600)).replace(microsecond=0)
        s_new = _different(wb, gl, s_old, above=s_old)
        wb.complete(course, person.account_id, gl, s_new, c2)
        edited = c2 + timedelta(days=1) + wb.jitter(0, 86400)
        rec = wb.manual_grade(course, gl, person, _different(wb, gl, s_new) * ratio, edited)
        # The tool re-sent the improved score with the completion time as timestamp — older than the
        # instructor's edit, so the platform refused it (Canvas 400 / Moodle 409, §4.6, §7 #7 #16).
        wb.post(course, gl, person, s_new, c2, Outcome.stale, stored_at=rec.stored_at)
        note = "instructor graded after the tool; the tool's re-send was refused as stale"
    else:
        comp = wb.records.completions[(person.account_id, gl.link.activity_id)]
        last = wb.records.passbacks[wb.key(course, gl, person)][-1]
        edited = last.timestamp + timedelta(days=2) + wb.jitter(0, 4 * 86400)
        wb.manual_grade(course, gl, person, _different(wb, gl, comp.score_given) * ratio, edited)
        note = "instructor changed the grade after the tool's accepted passback"
    wb.plant(_finding("manual_grade_conflict", course, gl, person, note=note), wb.key(course, gl, person))


def score_mismatch(wb: Workbench, course: CourseBuild, variant: str) -> None:
    person, gl = _take_cell(wb, course)
    wb.reset_cell(course, gl, person)
    s_old, p1 = _first_accepted(wb, course, gl, person)
    note = "LMS holds the older accepted score; the completion improved later, never sent"
    if variant == "self_collision":
        # The tool sent the same score twice within one second: Moodle compares whole seconds with `>=`
        # and refuses the second with 409 (§4.3, §10). The refusal is the tool colliding with itself,
        # not a person's later grade, so the cell stays a plain score_mismatch (issue 10 §1).
        first_second = p1.replace(microsecond=0)
        wb.post(course, gl, person, s_old, first_second + timedelta(milliseconds=700), Outcome.stale,
                stored_at=first_second)
        note += "; a duplicate send in the same second was refused 409 (the tool's own collision)"
    c2 = (p1 + timedelta(days=1) + wb.jitter(0, 3600)).replace(microsecond=0)
    wb.complete(course, person.account_id, gl, _different(wb, gl, s_old, above=s_old), c2)
    wb.plant(_finding("score_mismatch", course, gl, person, note=note), wb.key(course, gl, person))


def missing_in_lms(wb: Workbench, course: CourseBuild, variant: str) -> None:
    person, gl = _take_cell(wb, course)
    wb.reset_cell(course, gl, person)
    score = score_for(wb, gl)
    at = wb.completion_time(course, gl)
    wb.complete(course, person.account_id, gl, score, at)
    if variant == "server_error":
        wb.post(course, gl, person, score, at + wb.jitter(3, 240), Outcome.server_error)
        note = "the passback failed with a 5xx and was never retried"
    elif variant == "timed_out":
        wb.post(course, gl, person, score, at + wb.jitter(3, 240), Outcome.timed_out)
        note = "the passback timed out (logged with no status) and was never retried"
    else:
        note = "no passback was ever sent"
    wb.plant(_finding("missing_in_lms", course, gl, person, note=note), wb.key(course, gl, person))


LEARNER_PLANTS = {
    "not_learner": not_learner, "duplicate_account": duplicate_account,
    "outside_course_dates": outside_course_dates, "manual_grade_conflict": manual_grade_conflict,
    "score_mismatch": score_mismatch, "missing_in_lms": missing_in_lms,
}
ITEM_PLANTS = {"link_not_graded": link_not_graded, "item_not_active": item_not_active}
NEEDS_FREE_LEARNER = frozenset(LEARNER_PLANTS) - {"not_learner"} | {"launched_outside_course"}

