"""A baseline course: roster, graded links with line items, in-sync results, and the distractors
that must NOT become findings (rescaled equal scores, zero scores, an ungraded link with
completions, staff without completions, a learner who did nothing, a same-email second account)."""
from __future__ import annotations

from datetime import timedelta

from sandbox_lms.state import INSTRUCTOR, TEACHING_ASSISTANT, CourseRecord, LineItemRecord, Registration
from sandbox_lms.worlds.builder import ITEM_WINDOW_PROFILES, CourseBuild, GradedLink, Workbench, utc
from sandbox_lms.worlds.ids import ACTIVITY_KINDS, COURSE_TOPICS
from sandbox_lms.worlds.model import Link, ToolCourse

# Course windows in 2026, all ended well before the sandbox is used (stored times are in the past).
TERMS = (
    ("Spring 2026", utc(2026, 1, 12, 5), utc(2026, 5, 9, 4)),
    ("Late Spring 2026", utc(2026, 2, 2, 5), utc(2026, 6, 27, 4)),
    ("Summer 2026", utc(2026, 5, 4, 4), utc(2026, 8, 15, 4)),
)
ACTIVITY_MAXIMA = (10.0, 10.0, 20.0, 100.0)


def new_course(wb: Workbench, reg: Registration, index: int, utc_offset_h: int) -> CourseBuild:
    """An empty course of `reg` with its instructor on the roster (tool side and LMS side)."""
    rng = wb.rng
    ctx = wb.ids[reg.name].context_id()
    term, starts, ends = TERMS[index % len(TERMS)]
    title = f"{COURSE_TOPICS[index % len(COURSE_TOPICS)]} — section {index + 1:03d} ({term})"
    tool = ToolCourse(reg.name, ctx, title, reg.deployment_id, starts, ends, utc_offset_h)
    record = CourseRecord(context_id=ctx, title=title)
    reg.courses[ctx] = record
    wb.records.courses.append(tool)
    instructor = wb.new_person(reg, [INSTRUCTOR])
    course = CourseBuild(reg, tool, record, instructor)
    wb.add_to_roster(course, instructor)
    if rng.random() < 0.35:
        wb.new_staff(course, reg, TEACHING_ASSISTANT)      # staff distractor: a TA with no completions
    return course


def add_link(wb: Workbench, course: CourseBuild, *, graded: bool, with_item: bool, label: str | None = None,
             activity_max: float | None = None, item_max: float | None = None, position: float = 0.5,
             active: bool = True, activity_id: str | None = None) -> GradedLink:
    """A link of the course (and its line item when `with_item`), due at `position` of the window;
    `activity_id` places an existing activity of the tool (a retake, a cross-listed section)."""
    rng, reg = wb.rng, course.reg
    n = len(wb.records.links) + 1
    kind = ACTIVITY_KINDS[n % len(ACTIVITY_KINDS)]
    title = label or f"{kind} {n}"
    link = Link(reg.name, course.tool.context_id, wb.ids[reg.name].resource_link_id(),
                activity_id or f"act-{n:06d}", title, graded)
    wb.records.links.append(link)
    amax = activity_max or rng.choice(ACTIVITY_MAXIMA)
    span = course.ends_at - course.starts_at
    due = (course.starts_at + span * position).replace(microsecond=0)
    item = None
    if with_item:
        item = LineItemRecord(id=reg.next_line_item_id, label=title, score_maximum=item_max or amax,
                              resource_link_id=link.resource_link_id, active=active,
                              resource_id=link.activity_id if reg.profile != "canvas" else None)
        reg.next_line_item_id += 1 + rng.randrange(4)
        if reg.profile in ITEM_WINDOW_PROFILES:
            item.start_date_time = course.starts_at
            item.end_date_time = due + timedelta(days=1)
        course.record.line_items.append(item)
    return GradedLink(link, item, amax, due)


def score_for(wb: Workbench, gl: GradedLink) -> float:
    """A completion score on the activity's own scale, mostly good, sometimes zero."""
    r = wb.rng.random()
    if r < 0.03:
        return 0.0
    return float(round(gl.activity_max * wb.rng.uniform(0.45, 1.0)))


def fill_course(wb: Workbench, course: CourseBuild, n_items: int, n_learners: int, *, completion_rate: float,
                results: bool, distractors: bool) -> None:
    """Links, line items, learners and their in-sync cells. results=False: the tool could never send
    scores (revoked score scope), so the LMS holds no results and the log no passbacks."""
    rng = wb.rng
    for k in range(n_items):
        rescaled = distractors and k == 1
        # Distractor: item maximum 50 while the tool scores out of 10 — 8/10 is stored as 40/50.
        gl = add_link(wb, course, graded=True, with_item=True, position=(k + 1) / (n_items + 1),
                      activity_max=10.0 if rescaled else None, item_max=50.0 if rescaled else None)
        course.links.append(gl)
    ungraded = None
    if distractors and rng.random() < 0.5:
        ungraded = add_link(wb, course, graded=False, with_item=False, label="Reading: course orientation",
                            position=0.1)
    course.learners = [wb.new_learner(course) for _ in range(n_learners)]
    if not course.learners:
        return
    course.anchor = course.learners[0]
    idle = course.idle = course.learners[-1] if distractors and n_learners >= 4 else None
    twin = course.learners[2] if distractors and n_learners >= 5 else None
    for i, person in enumerate(course.learners):
        if person is idle:
            continue                                     # distractor: enrolled, did nothing
        done = False
        for k, gl in enumerate(course.links):
            must = person is course.anchor or (k == 0 and (i == 1 or person is twin))
            if not must and rng.random() >= completion_rate:
                continue
            score = 0.0 if (distractors and i == 1 and k == 0) else score_for(wb, gl)  # zero-score distractor
            if results:
                wb.in_sync(course, gl, person, score)
            else:
                wb.complete(course, person.account_id, gl, score, wb.completion_time(course, gl))
                wb.expected.add(wb.key(course, gl, person))
            done = True
        if ungraded is not None and rng.random() < 0.6:
            wb.complete(course, person.account_id, ungraded, score_for(wb, ungraded),
                        course.starts_at + timedelta(days=3) + wb.jitter(0, 86400 * 5))
        if done and person is not course.anchor and person is not twin:
            course.free.append(person)
    if twin is not None and course.links:
        # Distractor: the same person also has a manual account (same e-mail, other case) that did the
        # first activity after a manual login; the linked account's own completion is chosen and is in sync.
        gl = course.links[0]
        manual = wb.new_account(twin.email.lower(), twin.name, "manual")
        own = wb.records.completions[(twin.account_id, gl.link.activity_id)]
        wb.complete(None, manual, gl, max(0.0, own.score_given - 1), own.completed_at - timedelta(days=2),
                    context=None)
    rng.shuffle(course.free)
