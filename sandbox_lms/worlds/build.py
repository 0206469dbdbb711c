"""build_world: registrations and baseline courses first, then the planted cases, course level →
item level → learner level, each on the registration and course the plan names or the builder picks."""
from __future__ import annotations

from sandbox_lms.state import ALL_SCOPES, SCOPE_SCORE, Registration
from sandbox_lms.worlds import plants
from sandbox_lms.worlds.builder import CourseBuild, Workbench
from sandbox_lms.worlds.course import fill_course, new_course
from sandbox_lms.worlds.distractors import add_distractors
from sandbox_lms.worlds.ids import IdMaker, client_id, rand_hex, rand_uuid
from sandbox_lms.worlds.keys import new_key_pair
from sandbox_lms.worlds.model import COURSE_LEVEL, ITEM_LEVEL
from sandbox_lms.worlds.spec import FALLBACK, PlantRequest, RegPlan, WorldSpec, spec_for, supports
from sandbox_lms.worlds.world import World

ISSUERS = {
    "canvas": "https://canvas.instructure.com",      # Canvas cloud's issuer for every institution (§1.3)
    "blackboard": "https://blackboard.com",          # Blackboard's issuer (§1.3)
    "moodle": "https://{host}",                      # Moodle: the site URL
    "d2l": "https://{host}",                         # Brightspace: the institution's host
    "spec": "https://{host}",
}
DOMAINS = ("northfield.edu", "lakeside.ac.uk", "harbor.edu", "summit.edu", "riverbend.edu", "westgate.edu",
           "pinecrest.edu", "bayview.edu")
UTC_OFFSETS = {"canvas": -5, "moodle": 1, "d2l": -6, "blackboard": 0, "spec": 0}


def _registration(wb: Workbench, plan: RegPlan, index: int) -> tuple[Registration, bytes]:
    rng = wb.rng
    domain = DOMAINS[index % len(DOMAINS)]
    private, public = new_key_pair()
    reg = Registration(
        name=plan.name, profile=plan.profile, client_id=client_id(plan.profile, rng),
        issuer=ISSUERS[plan.profile].format(host=f"lms.{domain}"), key_id=f"{plan.name}-{rand_hex(rng, 8)}",
        public_key_pem=public,
        granted_scopes=set(ALL_SCOPES - {SCOPE_SCORE}) if plan.score_revoked else set(ALL_SCOPES),
        next_line_item_id=1000 + 1000 * index,
        type_id=1 + rng.randrange(9),
        deployment_id=(f"{1 + rng.randrange(40)}:{rand_hex(rng, 40)}" if plan.profile == "canvas"
                       else rand_uuid(rng) if plan.profile in ("d2l", "blackboard") else str(1 + rng.randrange(9))),
    )
    wb.ids[plan.name] = IdMaker(plan.profile, rng, index)
    wb.domains[plan.name] = domain
    wb.state.registrations[plan.name] = reg
    return reg, private


class _Picker:
    """Round-robin over a registration's courses that no course-level case owns."""

    def __init__(self, wb: Workbench, courses: list[CourseBuild]) -> None:
        self.courses = courses
        self.order = list(courses)
        wb.rng.shuffle(self.order)
        self.i = 0

    def eligible(self) -> list[CourseBuild]:
        return [c for c in self.order if not c.course_level and c.links]

    def next(self, *, needs_free: bool = False) -> CourseBuild | None:
        pool = self.eligible()
        for _ in range(len(pool)):
            c = pool[self.i % len(pool)]
            self.i += 1
            if not needs_free or c.free:
                return c
        return None


def _resolve(req: PlantRequest, regs: dict[str, tuple[Registration, RegPlan]]) -> tuple[str, str] | None:
    """(registration name, variant) for a request: its own profile if present, else any platform that
    can produce the variant, else the variant's fallback."""
    live = [(name, reg) for name, (reg, plan) in regs.items() if not plan.score_revoked]
    variant = req.variant
    for _ in range(2):
        same = [n for n, r in live if r.profile == req.profile and supports(r.profile, req.category, variant)]
        if same:
            return same[0], variant
        other = [n for n, r in live if supports(r.profile, req.category, variant)]
        if other:
            return other[0], variant
        variant = FALLBACK.get((req.category, variant), variant)
    return None


def _fresh_learner_course(wb: Workbench, picker: _Picker) -> CourseBuild | None:
    """When every learner is taken: a new learner, in sync on every link, in the next course."""
    course = picker.next()
    if course is None:
        return None
    person = wb.new_learner(course)
    for gl in course.links:
        wb.in_sync(course, gl, person, float(round(gl.activity_max * 0.8)))
    course.free.append(person)
    return course


def _plant(wb: Workbench, req: PlantRequest, variant: str, picker: _Picker) -> None:
    cat = req.category
    if cat == "course_unreachable":
        pool = picker.eligible()
        if len(pool) > 1:                          # keep at least one auditable course per platform
            plants.course_unreachable(wb, picker.next(), variant)
        return
    needs_free = cat in plants.NEEDS_FREE_LEARNER
    course = picker.next(needs_free=needs_free)
    if course is None and needs_free:
        course = _fresh_learner_course(wb, picker)
    if course is None:
        return
    if cat in plants.ITEM_PLANTS:
        plants.ITEM_PLANTS[cat](wb, course, variant)
    elif cat == "launched_outside_course":
        siblings = picker.courses
        if variant == "other_course" and len(siblings) < 2:
            variant = "no_context"
        plants.launched_outside_course(wb, course, variant, siblings)
    else:
        plants.LEARNER_PLANTS[cat](wb, course, variant)


def _level_rank(category: str) -> int:
    return 0 if category in COURSE_LEVEL else 1 if category in ITEM_LEVEL else 2


def build(spec: WorldSpec, seed: int, *, clean: bool) -> World:
    """Build the world a spec describes (see `build_world`)."""
    wb = Workbench(seed)
    regs: dict[str, tuple[Registration, RegPlan]] = {}
    keys: dict[str, bytes] = {}
    per_reg: dict[str, list[CourseBuild]] = {}
    for index, plan in enumerate(spec.registrations):
        if clean and plan.score_revoked:
            continue                                   # a clean world has no planted gaps at all
        reg, keys[plan.name] = _registration(wb, plan, index)
        regs[plan.name] = (reg, plan)
        courses = per_reg[plan.name] = []
        for c in range(plan.courses):
            big = plan.big_course and c == 0
            # Paging distractor: > 50 members (Canvas NRPS page max) and > 10 line items (Canvas page 10).
            n_learners = 60 if big else wb.rng.randint(*plan.learners)
            n_items = 12 if big else wb.rng.randint(*plan.items)
            course = new_course(wb, reg, c, UTC_OFFSETS[plan.profile])
            fill_course(wb, course, n_items, n_learners, completion_rate=spec.completion_rate,
                        results=not plan.score_revoked, distractors=spec.distractors)
            courses.append(course)
            if plan.score_revoked:
                plants.grades_not_accepted(wb, course)
    if not clean:
        pickers = {name: _Picker(wb, per_reg[name]) for name in regs}
        for req in sorted(spec.plants, key=lambda r: _level_rank(r.category)):   # stable: plan order kept
            resolved = _resolve(req, regs)
            if resolved is not None:
                name, variant = resolved
                _plant(wb, req, variant, pickers[name])
    if spec.distractors and spec.cross_course_distractors:
        for name, (_, plan) in regs.items():
            if not plan.score_revoked:
                add_distractors(wb, per_reg[name])
    unverified = frozenset((f.platform, f.context_id) for f in wb.truth if f.category in COURSE_LEVEL)
    return World(seed=seed, size=spec.size, clean=clean, state=wb.state, private_keys=keys, records=wb.records,
                  ground_truth=list(wb.truth), expected_keys=frozenset(wb.expected), gap_keys=frozenset(wb.gaps),
                  unverified=unverified)


def build_world(seed: int, size: str = "demo", *, clean: bool = False, **overrides) -> World:
    """A deterministic sandbox world: same seed ⇒ same records and ground truth (keys aside).
    Sizes: tiny | demo | large | bench; overrides: courses, items, learners, profile(s), completion_rate."""
    return build(spec_for(size, **overrides), seed, clean=clean)
