"""World sizes: which registrations, how many courses of what shape, and which cases to plant.

A plant request names a category, a variant (the concrete cause) and the profile it should land on;
the builder decides the data from it. Variants a platform cannot produce are listed in `VARIANTS`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

ALL_PROFILES = ("canvas", "moodle", "d2l", "blackboard", "spec")


@dataclass(frozen=True)
class RegPlan:
    name: str
    profile: str
    courses: int
    learners: tuple[int, int] = (12, 20)       # inclusive range per course
    items: tuple[int, int] = (3, 5)            # graded links with a line item per course
    score_revoked: bool = False                # the tool's score scope is not granted → grades_not_accepted
    big_course: bool = False                   # first course: > 50 members and > 10 line items (paging)


@dataclass(frozen=True)
class PlantRequest:
    category: str
    variant: str
    profile: str


@dataclass
class WorldSpec:
    size: str
    registrations: list[RegPlan]
    plants: list[PlantRequest] = field(default_factory=list)
    completion_rate: float = 0.85
    distractors: bool = True
    # Retake / tool-created item / unlinked-learner distractors (sandbox_lms/worlds/distractors.py): off
    # for bench worlds, whose courses keep an exact shape.
    cross_course_distractors: bool = True


# variant → profiles that can produce it (None = any). Sources: lti-platform-behavior.md.
VARIANTS: dict[tuple[str, str], frozenset[str] | None] = {
    ("course_unreachable", "concluded"): frozenset({"canvas"}),        # Canvas concluded course → 404 (§4.2)
    ("course_unreachable", "tool_removed"): None,                      # 401 on every service call
    ("link_not_graded", "completed"): None,
    ("link_not_graded", "untouched"): None,
    ("item_not_active", "refused"): frozenset({"canvas", "blackboard"}),  # unpublished / not Available
    ("item_not_active", "heuristic"): None,
    ("not_learner", "ta"): None,
    # Moodle grades suspended enrolments (is_enrolled onlyactive=false, §4.3): an Inactive member
    # there would simply be graded, so that variant is not planted on Moodle.
    ("not_learner", "inactive"): frozenset({"canvas", "d2l", "blackboard", "spec"}),
    ("not_learner", "absent"): None,
    ("duplicate_account", "manual_account"): None,
    ("duplicate_account", "roster_email"): None,                       # the roster's email ties the accounts
    ("launched_outside_course", "no_context"): None,
    ("launched_outside_course", "other_course"): None,
    ("launched_outside_course", "never_launched"): None,               # no identity; found by roster email
    ("outside_course_dates", "after_end"): None,
    ("outside_course_dates", "before_start"): None,
    ("outside_course_dates", "after_item_end"): frozenset({"d2l", "spec"}),  # items with endDateTime
    ("manual_grade_conflict", "edited"): None,
    ("manual_grade_conflict", "stale"): frozenset({"canvas", "moodle"}),   # Canvas 400 / Moodle 409 (§4.6)
    ("manual_grade_conflict", "no_log"): None,                         # LMS value not in the passback log
    ("score_mismatch", "self_collision"): frozenset({"moodle"}),       # whole-second 409 on a duplicate send
    ("score_mismatch", "improved"): None,
    ("missing_in_lms", "none"): None,
    ("missing_in_lms", "server_error"): None,
    ("missing_in_lms", "timed_out"): None,                             # logged with no status
}
FALLBACK = {("course_unreachable", "concluded"): "tool_removed", ("item_not_active", "refused"): "heuristic",
            ("not_learner", "inactive"): "absent", ("outside_course_dates", "after_item_end"): "after_end",
            ("manual_grade_conflict", "stale"): "edited", ("score_mismatch", "self_collision"): "improved"}


def supports(profile: str, category: str, variant: str) -> bool:
    """Whether a platform of this profile can produce the variant."""
    allowed = VARIANTS[(category, variant)]
    return allowed is None or profile in allowed


def _p(category: str, variant: str, profile: str) -> PlantRequest:
    return PlantRequest(category, variant, profile)


TINY_PLANTS = [
    _p("course_unreachable", "concluded", "canvas"),
    _p("link_not_graded", "completed", "moodle"),
    _p("item_not_active", "refused", "canvas"),
    _p("not_learner", "ta", "canvas"),
    _p("not_learner", "absent", "moodle"),
    _p("duplicate_account", "manual_account", "moodle"),
    _p("launched_outside_course", "no_context", "canvas"),
    _p("outside_course_dates", "after_end", "moodle"),
    _p("manual_grade_conflict", "stale", "canvas"),
    _p("manual_grade_conflict", "edited", "moodle"),
    _p("score_mismatch", "improved", "canvas"),
    _p("missing_in_lms", "none", "moodle"),
    # issue 10: values the tool is not known to have sent, records as a real tool writes them
    _p("manual_grade_conflict", "no_log", "canvas"),
    _p("score_mismatch", "self_collision", "moodle"),
    _p("missing_in_lms", "timed_out", "canvas"),
    _p("launched_outside_course", "never_launched", "moodle"),
    _p("duplicate_account", "roster_email", "canvas"),
]

DEMO_PLANTS = [
    _p("course_unreachable", "concluded", "canvas"),
    _p("course_unreachable", "tool_removed", "moodle"),
    _p("course_unreachable", "tool_removed", "blackboard"),
    _p("link_not_graded", "completed", "d2l"),
    _p("link_not_graded", "completed", "canvas"),
    _p("link_not_graded", "untouched", "moodle"),
    _p("item_not_active", "refused", "canvas"),
    _p("item_not_active", "refused", "blackboard"),
    _p("item_not_active", "heuristic", "moodle"),
    _p("item_not_active", "heuristic", "d2l"),
    _p("not_learner", "ta", "canvas"),
    _p("not_learner", "inactive", "canvas"),
    _p("not_learner", "absent", "moodle"),
    _p("not_learner", "absent", "blackboard"),
    _p("not_learner", "inactive", "d2l"),
    _p("duplicate_account", "manual_account", "canvas"),
    _p("duplicate_account", "manual_account", "moodle"),
    _p("duplicate_account", "manual_account", "d2l"),
    _p("launched_outside_course", "no_context", "canvas"),
    _p("launched_outside_course", "other_course", "moodle"),
    _p("launched_outside_course", "no_context", "blackboard"),
    _p("outside_course_dates", "after_end", "canvas"),
    _p("outside_course_dates", "before_start", "moodle"),
    _p("outside_course_dates", "after_item_end", "d2l"),
    _p("manual_grade_conflict", "edited", "canvas"),
    _p("manual_grade_conflict", "stale", "canvas"),
    _p("manual_grade_conflict", "edited", "moodle"),
    _p("manual_grade_conflict", "stale", "moodle"),
    _p("manual_grade_conflict", "edited", "blackboard"),
    _p("score_mismatch", "improved", "canvas"),
    _p("score_mismatch", "improved", "moodle"),
    _p("score_mismatch", "improved", "d2l"),
    _p("missing_in_lms", "server_error", "canvas"),
    _p("missing_in_lms", "none", "moodle"),
    _p("missing_in_lms", "none", "blackboard"),
    _p("missing_in_lms", "server_error", "d2l"),
    _p("manual_grade_conflict", "no_log", "canvas"),
    _p("manual_grade_conflict", "no_log", "moodle"),
    _p("score_mismatch", "self_collision", "moodle"),
    _p("missing_in_lms", "timed_out", "canvas"),
    _p("missing_in_lms", "timed_out", "moodle"),
    _p("launched_outside_course", "never_launched", "canvas"),
    _p("launched_outside_course", "never_launched", "moodle"),
    _p("duplicate_account", "roster_email", "canvas"),
    _p("duplicate_account", "roster_email", "moodle"),
]


def tiny() -> WorldSpec:
    """Fast tests: Canvas + Moodle (and a Moodle registration without the score scope); every category once."""
    return WorldSpec("tiny", [
        RegPlan("canvas-main", "canvas", 3, learners=(6, 7), items=(3, 3)),
        RegPlan("moodle-main", "moodle", 3, learners=(6, 7), items=(3, 3)),
        RegPlan("moodle-noscore", "moodle", 1, learners=(4, 4), items=(2, 2), score_revoked=True),
    ], list(TINY_PLANTS))


def demo() -> WorldSpec:
    """The default: Canvas, Moodle, D2L, Blackboard, revoked Canvas/Moodle; every category ≥ 2."""
    return WorldSpec("demo", [
        RegPlan("canvas-main", "canvas", 7, learners=(14, 24), items=(3, 6), big_course=True),
        RegPlan("moodle-main", "moodle", 5, learners=(12, 22), items=(3, 5)),
        RegPlan("d2l-main", "d2l", 3, learners=(12, 20), items=(3, 5)),
        RegPlan("blackboard-main", "blackboard", 3, learners=(12, 20), items=(3, 5)),
        RegPlan("canvas-noscore", "canvas", 2, learners=(8, 12), items=(2, 3), score_revoked=True),
        RegPlan("moodle-noscore", "moodle", 1, learners=(8, 12), items=(2, 3), score_revoked=True),
    ], list(DEMO_PLANTS))


def large() -> WorldSpec:
    """Benchmarks: 1,200 courses over four platforms, the demo's plants eight times over."""
    regs = [RegPlan(f"{p}-main", p, 300, learners=(20, 35), items=(4, 8), big_course=(p == "canvas"))
            for p in ("canvas", "moodle", "d2l", "blackboard")]
    regs.append(RegPlan("canvas-noscore", "canvas", 10, learners=(10, 20), items=(2, 4), score_revoked=True))
    return WorldSpec("large", regs, DEMO_PLANTS * 8)


def bench(courses: int = 100, items: int = 10, learners: int = 30, profiles: tuple[str, ...] = ("canvas",)) -> WorldSpec:
    """Parametric: `courses` courses per profile of fixed shape; plants scale with the course count."""
    regs = [RegPlan(f"{p}-bench", p, courses, learners=(learners, learners), items=(items, items))
            for p in profiles]
    regs += [RegPlan(f"{p}-noscore", p, 1, learners=(min(learners, 8),) * 2, items=(min(items, 2),) * 2,
                     score_revoked=True) for p in profiles[:1]]
    repeat = max(1, courses // 50)
    return WorldSpec("bench", regs, DEMO_PLANTS * repeat, cross_course_distractors=False)


SIZES = ("tiny", "demo", "large", "bench")


def spec_for(size: str, **overrides) -> WorldSpec:
    """The plan of a world of this size, with overrides: courses, items, learners (per course, fixed),
    profile/profiles (keep only registrations of these profiles; bench: build these), completion_rate."""
    profiles = overrides.pop("profiles", None) or ([overrides.pop("profile")] if "profile" in overrides else None)
    if isinstance(profiles, str):
        profiles = [profiles]
    overrides.pop("profile", None)
    courses = overrides.pop("courses", None)
    items = overrides.pop("items", None)
    learners = overrides.pop("learners", None)
    completion_rate = overrides.pop("completion_rate", None)
    if overrides:
        raise TypeError(f"unknown world option(s): {', '.join(sorted(overrides))}")
    for p in profiles or ():
        if p not in ALL_PROFILES:
            raise ValueError(f"unknown profile {p!r} (expected one of {', '.join(ALL_PROFILES)})")
    if size == "bench":
        spec = bench(courses or 100, items or 10, learners or 30, tuple(profiles or ("canvas",)))
    elif size in ("tiny", "demo", "large"):
        spec = {"tiny": tiny, "demo": demo, "large": large}[size]()
        if profiles:
            spec.registrations = [r for r in spec.registrations if r.profile in profiles]
        if courses:
            spec.registrations = [replace(r, courses=courses) if not r.score_revoked else r
                                  for r in spec.registrations]
        if items:
            spec.registrations = [replace(r, items=(items, items)) for r in spec.registrations]
        if learners:
            spec.registrations = [replace(r, learners=(learners, learners)) for r in spec.registrations]
    else:
        raise ValueError(f"unknown world size {size!r} (expected one of {', '.join(SIZES)})")
    if not spec.registrations:
        raise ValueError("no registrations left after the profile filter")
    if completion_rate is not None:
        spec.completion_rate = float(completion_rate)
    return spec
