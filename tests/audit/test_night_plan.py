"""Which courses a night reads (gradesync/audit/night_plan.py): each rule on a real database (SQLite, and
PostgreSQL when GRADESYNC_TEST_POSTGRES_URL is set), and a bounded number of SQL statements for any
number of courses."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event

import models as m
from gradesync.audit import night_plan
from gradesync.audit.night_plan import plan_night, rolling_slot
from gradesync.audit.records import CourseRef
from gradesync.settings import AuditSettings, Settings

P = "canvas-main"
NOW = datetime(2026, 5, 20, 2, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
SETTINGS = Settings(audit=AuditSettings(ended_grace_days=14, rolling_days=7))


class World:
    """Rows written straight through the models: courses, links, the tool's records, past runs."""

    def __init__(self, url: str):
        self.url = url
        self.engine = m.make_engine(url)
        with m.session_scope(self.engine) as s:
            s.add(m.Platform(name=P, vendor="canvas", issuer="https://canvas.test", client_id="c"))
            s.add(m.Account(account_id="acc-1", email="a@x.edu", origin="lti"))

    def course(self, ctx: str, starts: datetime | None = NOW - 30 * DAY, ends: datetime | None = NOW + 60 * DAY,
               activity: str | None = None) -> CourseRef:
        with m.session_scope(self.engine) as s:
            s.add(m.Course(platform=P, context_id=ctx, starts_at=starts, ends_at=ends))
            s.flush()
            s.add(m.Link(platform=P, context_id=ctx, resource_link_id=f"rl-{ctx}", activity_id=activity or f"act-{ctx}",
                         graded=True))
        return CourseRef(P, ctx, f"https://canvas.test/{ctx}/line_items", f"https://canvas.test/{ctx}/members")

    def run(self, started: datetime, audits: dict[str, str], findings: tuple[str, ...] = (), kind: str = "nightly",
            activities: list[str] | None = None, reasons: dict[str, str] | None = None) -> int:
        """A past run that audited `audits` (context_id → status), with a finding in each of `findings`."""
        with m.session_scope(self.engine) as s:
            run = m.AuditRun(kind=kind, started_at=started, state="completed", params={"activities": activities})
            s.add(run)
            s.flush()
            for ctx, status in audits.items():
                s.add(m.CourseAudit(run_id=run.id, platform=P, context_id=ctx, status=status,
                                    reason=(reasons or {}).get(ctx)))
            for ctx in findings:
                s.add(m.Finding(run_id=run.id, identity=f"missing|{ctx}", category=m.FindingCategory.missing_in_lms,
                                level="learner", platform=P, context_id=ctx))
            return run.id

    def completion(self, activity: str, changed: datetime | None, ctx: str | None = None) -> None:
        with m.session_scope(self.engine) as s:
            s.add(m.Completion(account_id="acc-1", activity_id=activity, score_given=8, score_maximum=10,
                               completed_at=NOW - 40 * DAY, platform=P if ctx else None, context_id=ctx,
                               changed_at=changed))

    def passback(self, ctx: str, imported: datetime) -> None:
        with m.session_scope(self.engine) as s:
            s.add(m.Passback(platform=P, context_id=ctx, resource_link_id=f"rl-{ctx}", lms_user_id="u1",
                             score_given=8, score_maximum=10, timestamp=imported - DAY, status_code=200,
                             imported_at=imported))

    def resync(self, ctx: str, started: datetime) -> None:
        with m.session_scope(self.engine) as s:
            task = m.ResyncTask(identity=f"missing|{ctx}", platform=P, context_id=ctx, line_item_id="li",
                                lms_user_id="u1", score_given=8, score_maximum=10,
                                category=m.FindingCategory.missing_in_lms, state=m.ResyncState.verified)
            s.add(task)
            s.flush()
            s.add(m.ResyncAttempt(task_id=task.id, attempt_no=1, timestamp_sent=started, started_at=started,
                                  outcome="verified"))


@pytest.fixture
def world(migrated_db_url) -> World:
    return World(migrated_db_url)


def one(world: World, ref: CourseRef, now: datetime = NOW, **kw) -> night_plan.CoursePlan:
    [plan] = plan_night(world.url, SETTINGS, [ref], now, **kw)
    assert (plan.platform, plan.context_id) == (ref.platform, ref.context_id)
    return plan


def off_slot_night(ref: CourseRef) -> datetime:
    """A night (near NOW) that is not this course's rolling night."""
    for d in range(7):
        night = NOW + d * DAY
        if rolling_slot(ref.platform, ref.context_id, 7) != night.date().toordinal() % 7:
            return night
    raise AssertionError("unreachable")


def test_full_reads_every_course_and_not_started_courses_are_not_read(world):
    future = world.course("C-future", starts=NOW + 3 * DAY)
    plan = one(world, future)
    assert not plan.read and plan.reason == "not started yet"
    assert one(world, future, full=True) == night_plan.CoursePlan(P, "C-future", True, "full read")


def test_active_course_never_audited_unverified_or_with_findings_is_read(world):
    ref = world.course("C1")
    assert one(world, ref).reason == "never audited"
    world.run(NOW - 5 * DAY, {"C1": "unverified"})
    plan = one(world, ref)
    assert plan.read and plan.reason == "never audited"            # audited with status "audited": never
    world.run(NOW - 4 * DAY, {"C1": "audited"}, findings=("C1",))
    assert (one(world, ref).read, one(world, ref).reason) == (True, "open findings are watched nightly")
    world.run(NOW - 3 * DAY, {"C1": "unverified"})
    assert one(world, ref).reason == "last audit could not read the course"
    world.run(NOW - 2 * DAY, {"C1": "audited"}, reasons={"C1": "link rl-C1 unverified: results could not be read"})
    assert one(world, ref).reason == "some grades could not be checked last time"


def test_clean_unchanged_course_is_read_on_its_rolling_night_only(world):
    ref = world.course("C1")
    world.completion("act-C1", NOW - 10 * DAY, "C1")
    world.run(NOW - DAY, {"C1": "audited"})
    plans = []
    for d in range(14):                       # two rounds of nights, each read recorded as that night's audit
        night = NOW + d * DAY
        plan = one(world, ref, night)
        plans.append(plan)
        if plan.read:
            world.run(night, {"C1": "audited"})
    read_on = [d for d, p in enumerate(plans) if p.read]
    assert len(read_on) == 2 and read_on[1] - read_on[0] == 7, plans
    assert all(plans[d].reason == "clean and unchanged: its night of the 7-night round" for d in read_on)
    assert all(p.reason == "clean and unchanged: read once every 7 nights" for p in plans if not p.read)


def test_rolling_guard_reads_a_clean_course_last_read_a_round_ago(world):
    ref = world.course("C1")
    night = off_slot_night(ref)
    # Last week's run started a little later in the night than tonight's: still due (12 h slack).
    world.run(night - 7 * DAY + timedelta(minutes=5), {"C1": "audited"})
    plan = one(world, ref, night)
    assert plan.read and plan.reason == "clean and unchanged, last read 7 days ago"


@pytest.mark.parametrize("change", ["completion", "passback", "resync", "other-course completion"])
def test_a_change_after_the_last_clean_audit_reads_the_course(world, change):
    ref = world.course("C1")
    night = off_slot_night(ref)
    last = night - 2 * DAY
    world.completion("act-C1", last - DAY, "C1")
    world.passback("C1", last - DAY)
    world.resync("C1", last - DAY)
    world.run(last, {"C1": "audited"})
    assert not one(world, ref, night).read
    if change == "completion":
        world.completion("act-C1", last + timedelta(hours=3), "C2")
    elif change == "passback":
        world.passback("C1", last + timedelta(hours=3))
    elif change == "resync":
        world.resync("C1", last + timedelta(hours=3))
    else:
        # the activity linked in C1, completed after a manual login: expected in C1 all the same
        world.completion("act-C1", last + timedelta(hours=3), None)
    plan = one(world, ref, night)
    word = {"completion": "completions", "passback": "passbacks", "resync": "resync"}.get(change, "completions")
    assert plan.read and word in plan.reason and plan.reason.endswith("since the last clean audit")


def test_a_completion_row_without_a_change_mark_counts_as_changed(world):
    ref = world.course("C1")
    night = off_slot_night(ref)
    world.run(night - 2 * DAY, {"C1": "audited"})
    world.completion("act-C1", None, "C1")
    assert one(world, ref, night).read


def test_changes_of_other_courses_do_not_read_this_one(world):
    ref, other = world.course("C1"), world.course("C2")
    night = off_slot_night(ref)
    world.run(night - 2 * DAY, {"C1": "audited", "C2": "audited"})
    world.completion("act-C2", night - DAY, "C2")
    world.passback("C2", night - DAY)
    world.resync("C2", night - DAY)
    plans = {p.context_id: p for p in plan_night(world.url, SETTINGS, [ref, other], night)}
    assert not plans["C1"].read and plans["C2"].read


def test_resync_runs_and_activity_narrowed_audits_are_not_whole_course_audits(world):
    ref = world.course("C1")
    night = off_slot_night(ref)
    world.run(night - 3 * DAY, {"C1": "audited"}, findings=("C1",))
    # a later on-demand audit of one activity found nothing there: the open finding elsewhere stays watched
    world.run(night - 2 * DAY, {"C1": "audited"}, kind="course-audit", activities=["act-C1"])
    world.run(night - DAY, {"C1": "audited"}, kind="resync")
    assert one(world, ref, night).reason == "open findings are watched nightly"
    # a whole-course on-demand audit does count ("[]" = not narrowed)
    world.run(night - timedelta(hours=12), {"C1": "audited"}, kind="course-audit", activities=[])
    assert not one(world, ref, night).read


def test_ended_course_final_audit_then_weekly_until_clean_then_not_read(world):
    ended = NOW - 20 * DAY                         # grace (14 days) ran out 6 days ago
    ref = world.course("C-old", starts=NOW - 120 * DAY, ends=ended)
    world.run(ended + 3 * DAY, {"C-old": "audited"})          # clean, but within the grace
    assert one(world, ref).reason == "final audit after the course ended"
    world.run(NOW - 2 * DAY, {"C-old": "audited"}, findings=("C-old",))
    plan = one(world, ref)
    assert not plan.read and plan.reason == "ended, not clean yet: re-checked weekly"
    later = NOW + 5 * DAY - timedelta(minutes=10)            # 7 nights after the final audit
    assert one(world, ref, later).reason == "ended, not clean yet: weekly re-check"
    world.run(later, {"C-old": "unverified"})
    assert not one(world, ref, later + DAY).read
    assert one(world, ref, later + 7 * DAY).read
    world.run(later + 7 * DAY, {"C-old": "audited"})
    for d in range(8, 30):                                   # clean: no rolling cadence for an ended course
        plan = one(world, ref, later + d * DAY)
        assert not plan.read and plan.reason == "ended; final audit was clean"
    world.passback("C-old", later + 10 * DAY)
    plan = one(world, ref, later + 11 * DAY)
    assert plan.read and plan.reason == "ended, but new passbacks in the tool's log since the last clean audit"


def test_ended_within_its_grace_is_an_active_course(world):
    ref = world.course("C-late", starts=NOW - 120 * DAY, ends=NOW - 10 * DAY)
    world.run(NOW - 3 * DAY, {"C-late": "audited"}, findings=("C-late",))
    assert one(world, ref).reason == "open findings are watched nightly"


def test_unchanged_courses_spread_over_the_nights(world):
    refs = [CourseRef(P, f"C{i:03}", None, None) for i in range(140)]
    counts = [sum(rolling_slot(r.platform, r.context_id, 7) == d for r in refs) for d in range(7)]
    assert sum(counts) == 140 and min(counts) >= 10, counts      # ~20 a night, none empty


def count_statements(engine):
    seen: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)
    event.listen(engine, "before_cursor_execute", before)
    return seen, lambda: event.remove(engine, "before_cursor_execute", before)


def test_a_batch_of_many_courses_costs_a_fixed_number_of_queries(world, monkeypatch):
    from sqlalchemy import insert

    n = 1_200
    ctxs = [f"B{i:04}" for i in range(n)]
    with m.session_scope(world.engine) as s:
        s.execute(insert(m.Course), [dict(platform=P, context_id=c, starts_at=NOW - 30 * DAY, ends_at=NOW + 30 * DAY)
                                     for c in ctxs])
        s.execute(insert(m.Link), [dict(platform=P, context_id=c, resource_link_id="rl", activity_id=f"act-{c}",
                                        graded=True) for c in ctxs])
    changed = set(ctxs[::5])
    old = set(ctxs[1::5])
    world.run(NOW - 2 * DAY, {c: "audited" for c in ctxs if c not in old}, findings=tuple(ctxs[2::5]))
    for c in sorted(changed)[:50]:
        world.passback(c, NOW - DAY)
    refs = [CourseRef(P, c, None, None) for c in ctxs]

    monkeypatch.setattr(night_plan, "CHUNK", 500)            # 3 chunks
    seen, stop = count_statements(world.engine)
    try:
        plans = plan_night(world.url, SETTINGS, refs, NOW)
    finally:
        stop()
    selects = [q for q in seen if q.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert len(selects) == 3 * 5, selects                    # five queries per chunk, none per course
    by = {p.context_id: p for p in plans}
    assert [p.context_id for p in plans] == ctxs
    assert all(by[c].reason == "never audited" for c in old)
    assert all(by[c].reason == "open findings are watched nightly" for c in ctxs[2::5])
    assert all(by[c].read and "passbacks" in by[c].reason for c in sorted(changed)[:50])
    rest = [by[c] for c in ctxs if c not in old and c not in changed and c not in set(ctxs[2::5])]
    on_slot = [p for p in rest if p.read]
    assert 0 < len(on_slot) < len(rest) / 3                  # ~1/7 of the clean, unchanged ones
