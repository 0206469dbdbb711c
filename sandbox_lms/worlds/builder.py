"""The world builder's workbench: people, gradebook cells and the passback log, kept consistent.

Every helper here writes both sides at once (the LMS state and the tool's records), so a cell is
never left half-built: an accepted passback always stores the matching result, a refused one never does.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sandbox_lms.profiles import get_profile
from sandbox_lms.state import (
    INSTRUCTOR, LEARNER, CourseRecord, LineItemRecord, LmsState, Member, Registration, ResultRecord,
)
from sandbox_lms.worlds.answers import Outcome
from sandbox_lms.worlds.ids import FIRST_NAMES, LAST_NAMES, IdMaker
from sandbox_lms.worlds.model import Account, Completion, Identity, Link, Passback, PlantedFinding, ToolCourse, ToolRecords

# Profiles whose line items carry startDateTime/endDateTime in the world (D2L's sample JSON has them,
# §2.5; the spec allows them, §2.1). Canvas does not serialize them (§2.2), so none are set there.
ITEM_WINDOW_PROFILES = frozenset({"d2l", "spec"})

Key = tuple[str, str, str, str]            # (platform, context_id, resource_link_id, lms_user_id)


@dataclass(slots=True)
class Person:
    account_id: str
    lms_user_id: str
    email: str
    name: str
    member: Member | None                   # None: linked to the platform but not on the roster


@dataclass(slots=True)
class GradedLink:
    link: Link
    item: LineItemRecord | None
    activity_max: float                     # the tool's own maximum for the activity
    due: datetime                           # completions of this link happen before this


@dataclass
class CourseBuild:
    reg: Registration
    tool: ToolCourse
    record: CourseRecord
    instructor: Person
    links: list[GradedLink] = field(default_factory=list)     # normal graded links with a line item
    learners: list[Person] = field(default_factory=list)
    anchor: Person | None = None            # always in sync on every normal link (keeps the item
                                            # heuristic of diagnosis-rules from firing by accident)
    free: list[Person] = field(default_factory=list)          # learners a learner-level plant may take
    idle: Person | None = None              # distractor: enrolled, completed nothing (keep it so)
    course_level: bool = False              # a course-level case owns this course

    @property
    def starts_at(self) -> datetime:
        return self.tool.starts_at

    @property
    def ends_at(self) -> datetime:
        return self.tool.ends_at


class Workbench:
    """Shared mutable state of one world build."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.state = LmsState()
        self.records = ToolRecords()
        self.truth: list[PlantedFinding] = []
        self.expected: set[Key] = set()     # expected grades, by construction
        self.gaps: set[Key] = set()         # of which not in sync, by construction
        self.ids: dict[str, IdMaker] = {}
        self.domains: dict[str, str] = {}
        self._accounts = 0

    # --- people ---------------------------------------------------------------------------
    def new_account(self, email: str, name: str, origin: str) -> str:
        """A tool account (no platform identity); returns its id."""
        self._accounts += 1
        account_id = f"A{self._accounts:06d}"
        self.records.accounts.append(Account(account_id, email, name, origin))
        return account_id

    def new_person(self, reg: Registration, roles: list[str] | None, *, status: str = "Active") -> Person:
        """A person with an LTI-created account linked to `reg`; on the roster unless roles is None."""
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        # Capitalised addresses as the LMS sent them; manual sign-ups type them in lower case
        # (the duplicate_account cases rely on the case-insensitive match of diagnosis-rules).
        email = f"{first}.{last}{self._accounts + 1}@{self.domains[reg.name]}"
        name = f"{first} {last}"
        user_id = self.ids[reg.name].user_id()
        account_id = self.new_account(email, name, "lti")
        self.records.identities.append(Identity(account_id, reg.name, user_id))
        member = None
        if roles is not None:
            member = Member(user_id=user_id, roles=list(roles), status=status, name=name, email=email,
                            given_name=first, family_name=last)
        return Person(account_id, user_id, email, name, member)

    def add_to_roster(self, course: CourseBuild, person: Person) -> None:
        """Put the person's membership on the course's NRPS roster."""
        if person.member is not None:
            course.record.members.append(person.member)

    def unlinked_learner(self, course: CourseBuild) -> Member:
        """A Learner on the roster (with name and email, as NRPS gives them) who never launched the
        tool from the LMS: no account is linked to their LMS user id."""
        reg = course.reg
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        self._accounts += 1     # keeps e-mails unique across the world
        member = Member(user_id=self.ids[reg.name].user_id(), roles=[LEARNER], status="Active",
                        name=f"{first} {last}", email=f"{first}.{last}.n{self._accounts}@{self.domains[reg.name]}",
                        given_name=first, family_name=last)
        course.record.members.append(member)
        return member

    def new_staff(self, course: CourseBuild | None, reg: Registration, role: str = INSTRUCTOR) -> Person:
        """A staff member (Instructor by default), on the course roster when a course is given."""
        person = self.new_person(reg, [role])
        if course is not None:
            self.add_to_roster(course, person)
        return person

    def new_learner(self, course: CourseBuild, *, status: str = "Active") -> Person:
        """A Learner on the course roster with the given enrolment status."""
        person = self.new_person(course.reg, [LEARNER], status=status)
        self.add_to_roster(course, person)
        return person

    # --- time -----------------------------------------------------------------------------
    def jitter(self, lo_s: float, hi_s: float) -> timedelta:
        """A random span between lo and hi seconds, with milliseconds."""
        # random() rather than randrange(): a third of the cost, and worlds of 100k cells call this a lot.
        return timedelta(milliseconds=int(1000 * (lo_s + (hi_s - lo_s) * self.rng.random())))

    def completion_time(self, course: CourseBuild, gl: GradedLink) -> datetime:
        """A completion moment in the days before the link's due date (inside the course window)."""
        # whole seconds, so no .replace(microsecond=0): this runs once per cell of large worlds
        t = gl.due - timedelta(seconds=3 * 86400 + int(2 * 86400 * self.rng.random()))
        floor = course.starts_at + timedelta(days=1)
        return t if t > floor else floor

    # --- cells ----------------------------------------------------------------------------
    def key(self, course: CourseBuild, gl: GradedLink, person: Person) -> Key:
        """The expected-grade key (platform, context_id, resource_link_id, lms_user_id)."""
        return (course.reg.name, course.tool.context_id, gl.link.resource_link_id, person.lms_user_id)

    def complete(self, course: CourseBuild | None, account_id: str, gl: GradedLink, score: float,
                 at: datetime, *, context: tuple[str, str, str] | None | bool = True) -> Completion:
        """Record that `account_id` completed the link's activity. context=True: launched from this
        course's link; None: after a manual login; a tuple: launched from (platform, context, link)."""
        if context is True:
            assert course is not None
            context = (course.reg.name, course.tool.context_id, gl.link.resource_link_id)
        plat, ctx, rl = context if context else (None, None, None)
        comp = Completion(account_id, gl.link.activity_id, float(score), gl.activity_max, at, plat, ctx, rl)
        self.records.completions[(account_id, gl.link.activity_id)] = comp
        return comp

    def post(self, course: CourseBuild, gl: GradedLink, person: Person, score: float, ts: datetime,
             outcome: Outcome, *, stored_at: datetime | None = None, no_link: bool = False) -> Passback:
        """Log a score POST; an accepted one also stores the LMS result exactly as the platform would."""
        assert gl.item is not None
        pb = Passback(person.account_id, course.reg.name, course.tool.context_id, gl.link.resource_link_id,
                      gl.item.id, person.lms_user_id, float(score), gl.activity_max, ts, outcome, stored_at,
                      no_link)
        self.records.log(pb)
        if outcome is Outcome.accepted:
            stored = ts
            if get_profile(course.reg.profile).policy.whole_seconds:
                stored = ts.replace(microsecond=0)     # Moodle: timemodified = strtotime(timestamp) (§4.3)
            gl.item.results[person.lms_user_id] = ResultRecord(
                user_id=person.lms_user_id, result_score=score * gl.item.score_maximum / gl.activity_max,
                result_maximum=gl.item.score_maximum, stored_at=stored)
        return pb

    def manual_grade(self, course: CourseBuild, gl: GradedLink, person: Person, score_on_item: float,
                     at: datetime) -> ResultRecord:
        """An instructor's gradebook edit: new score, stored time moves, the scorer is the instructor."""
        assert gl.item is not None
        prev = gl.item.results.get(person.lms_user_id)
        rec = ResultRecord(user_id=person.lms_user_id, result_score=score_on_item,
                           result_maximum=gl.item.score_maximum, stored_at=at.replace(microsecond=0),
                           scoring_user_id=course.instructor.lms_user_id, by_tool=False,
                           tool_posted=prev.tool_posted if prev else False)
        gl.item.results[person.lms_user_id] = rec
        return rec

    def in_sync(self, course: CourseBuild, gl: GradedLink, person: Person, score: float) -> None:
        """A completed, passed-back, accepted cell — sometimes after an earlier attempt or a retried 5xx."""
        at = self.completion_time(course, gl)
        roll = self.rng.random()
        if roll < 0.15 and score > 0:
            # An earlier, lower attempt was sent and accepted first; the later one replaced it.
            first_at = at - timedelta(days=1) - self.jitter(0, 86400)
            first = float(self.rng.randrange(0, int(score))) if score >= 1 else 0.0
            self.post(course, gl, person, first, first_at + self.jitter(3, 240), Outcome.accepted)
        ts = at + self.jitter(3, 240)
        if 0.15 <= roll < 0.20:
            # A 5xx on the first try, retried ten minutes later and accepted.
            self.post(course, gl, person, score, ts, Outcome.server_error)
            ts = ts + timedelta(minutes=10) + self.jitter(0, 30)
        self.complete(course, person.account_id, gl, score, at)
        self.post(course, gl, person, score, ts, Outcome.accepted)
        self.expected.add(self.key(course, gl, person))

    def reset_cell(self, course: CourseBuild, gl: GradedLink, person: Person) -> None:
        """Forget everything about one cell (completion, passbacks, result) before a plant rebuilds it."""
        self.records.completions.pop((person.account_id, gl.link.activity_id), None)
        self.records.passbacks.pop(self.key(course, gl, person), None)
        if gl.item is not None:
            gl.item.results.pop(person.lms_user_id, None)

    def plant(self, finding: PlantedFinding, key: Key | None = None) -> PlantedFinding:
        """Record a planted finding (and, for learner cases, its expected-but-gap grade)."""
        self.truth.append(finding)
        if key is not None:
            self.expected.add(key)
            self.gaps.add(key)
        return finding


def utc(y: int, m: int, d: int, h: int = 0) -> datetime:
    """An aware UTC datetime."""
    return datetime(y, m, d, h, tzinfo=timezone.utc)
