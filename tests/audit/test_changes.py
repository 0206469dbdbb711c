"""New / resolved / history computed set-based over a run (gradesync/audit/changes.py) equal the former
per-course computation (kept here as the oracle) on random multi-run histories: several courses,
audited and unverified statuses, resync runs, runs narrowed to some activities."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, event, func
from sqlmodel import select

import models as m
from gradesync.audit import changes
from gradesync.audit.persist import in_scope, load_summary, run_activities

COURSES = [("p1", "c1"), ("p1", "c2"), ("p1", "c3"), ("p2", "c1"), ("p2", "c9")]
ACTIVITIES = ["a1", "a2", "a3"]
CATEGORIES = ["course_unreachable", "link_not_graded", "missing_in_lms", "score_mismatch", "not_learner"]
T0 = datetime(2026, 1, 1, 2, tzinfo=timezone.utc)


# ---- the oracle: the per-course implementation load_summary had before changes.py -------------------

def _previous_run(s, c: m.CourseAudit, run_id: int, *, audited_only: bool) -> int | None:
    q = select(func.max(m.CourseAudit.run_id)).join(m.AuditRun, m.AuditRun.id == m.CourseAudit.run_id).where(
        m.CourseAudit.platform == c.platform, m.CourseAudit.context_id == c.context_id,
        m.CourseAudit.run_id < run_id, m.AuditRun.kind != "resync")
    if audited_only:
        q = q.where(m.CourseAudit.status == "audited")
    return s.exec(q).one()


def _course_findings(s, run_id: int | None, key: tuple[str, str]) -> list[m.Finding]:
    if run_id is None:
        return []
    return list(s.exec(select(m.Finding).where(m.Finding.run_id == run_id, m.Finding.platform == key[0],
                                               m.Finding.context_id == key[1]).order_by(m.Finding.id)))


def oracle_changes(s, run_id: int) -> tuple[set[str], list[int]]:
    run = s.get(m.AuditRun, run_id)
    courses = list(s.exec(select(m.CourseAudit).where(m.CourseAudit.run_id == run_id).order_by(m.CourseAudit.id)))
    rows = list(s.exec(select(m.Finding).where(m.Finding.run_id == run_id).order_by(m.Finding.id)))
    activities = run_activities(run)
    current = {r.identity for r in rows}
    new: set[str] = set()
    resolved: list[int] = []
    by_course: dict[tuple[str, str], list[m.Finding]] = {}
    for r in rows:
        by_course.setdefault((r.platform, r.context_id), []).append(r)
    for c in courses:
        key = (c.platform, c.context_id)
        mine = by_course.get(key, [])
        last_audited = _previous_run(s, c, run_id, audited_only=True)
        last_any = _previous_run(s, c, run_id, audited_only=False)
        prev_audited = [r for r in _course_findings(s, last_audited, key) if in_scope(r.activity_id, activities)]
        seen = {r.identity for r in prev_audited} | {r.identity for r in _course_findings(s, last_any, key)
                                                     if last_any != last_audited}
        new |= {r.identity for r in mine if r.identity not in seen}
        if c.status == "audited":
            resolved += [r.id for r in prev_audited if r.identity not in current]
    return new, resolved


def oracle_history(s, run_id: int) -> list[tuple[str, dict[str, int]]]:
    runs = list(s.exec(select(m.AuditRun).where(m.AuditRun.id <= run_id, m.AuditRun.kind != "resync")
                       .order_by(m.AuditRun.id.desc()).limit(changes.HISTORY_RUNS * 3)))
    by_day: dict[str, int] = {}
    for r in runs:
        by_day.setdefault(r.started_at.date().isoformat(), r.id)
    out = []
    for day, rid in sorted(by_day.items())[-changes.HISTORY_RUNS:]:
        counts = dict(s.exec(select(m.Finding.category, func.count()).where(m.Finding.run_id == rid)
                             .group_by(m.Finding.category)).all())
        out.append((day, {k.value: v for k, v in counts.items()}))
    return out


# ---- random histories -----------------------------------------------------------------------------

def _pool(rng: random.Random) -> dict[tuple[str, str], list[tuple[str, str, str | None, str | None]]]:
    """Per course: the findings that may appear, (category, resource_link_id, lms_user_id, activity_id)."""
    out = {}
    for key in COURSES:
        out[key] = [("course_unreachable", None, None, None)] + [
            (rng.choice(CATEGORIES[1:]), f"rl{i % 3}", f"u{i}", rng.choice(ACTIVITIES + [None]))
            for i in range(7)]
    return out


def build_history(s, rng: random.Random) -> list[int]:
    pool = _pool(rng)
    run_ids = []
    when = T0
    for _ in range(rng.randint(3, 9)):
        when += timedelta(hours=rng.choice([1, 6, 24, 24, 48]))
        kind = rng.choice(["nightly", "nightly", "course-audit", "resync"])
        acts = rng.sample(ACTIVITIES, rng.randint(1, 2)) if kind == "course-audit" and rng.random() < 0.6 else None
        run = m.AuditRun(kind=kind, params={"activities": acts}, state="completed", started_at=when)
        s.add(run)
        s.flush()
        run_ids.append(run.id)
        for key in rng.sample(COURSES, rng.randint(1, len(COURSES))):
            status = "audited" if rng.random() < 0.7 else "unverified"
            if rng.random() < 0.9:      # now and then findings of a course with no status row in the run
                s.add(m.CourseAudit(run_id=run.id, platform=key[0], context_id=key[1], status=status))
            if status == "unverified":
                chosen = [pool[key][0]] if rng.random() < 0.5 else []
            else:
                chosen = rng.sample(pool[key][1:], rng.randint(0, 5))
            for category, rl, user, activity in chosen:
                f = m.Finding(run_id=run.id, category=m.FindingCategory(category), level="learner",
                              platform=key[0], context_id=key[1], resource_link_id=rl, lms_user_id=user,
                              activity_id=activity, evidence={}, action="")
                f.identity = f"{category}|{key[0]}|{key[1]}|{rl or ''}|{user or ''}"
                s.add(f)
        s.flush()
    return run_ids


def _clear(s) -> None:
    for model in (m.Finding, m.CourseAudit, m.AuditRun):
        s.exec(delete(model))


def test_set_based_changes_equal_the_per_course_oracle_on_random_histories(migrated_db_url: str):
    engine = m.make_engine(migrated_db_url)
    totals = {"new": 0, "resolved": 0, "runs": 0}
    for seed in range(40):
        rng = random.Random(seed)
        with m.session_scope(engine) as s:
            _clear(s)
            run_ids = build_history(s, rng)
        with m.session_scope(engine) as s:
            for rid in run_ids:
                want_new, want_resolved = oracle_changes(s, rid)
                got_new, got_resolved = changes.run_changes(s, rid, run_activities(s.get(m.AuditRun, rid)))
                assert got_new == want_new, (seed, rid)
                assert [f.id for f in got_resolved] == want_resolved, (seed, rid)
                assert changes.history(s, rid) == oracle_history(s, rid), (seed, rid)
                totals["new"] += len(want_new)
                totals["resolved"] += len(want_resolved)
                totals["runs"] += 1
    # the histories exercised both outcomes, not only empty sets
    assert totals["new"] > 50 and totals["resolved"] > 20, totals


def test_load_summary_statement_count_does_not_grow_with_courses(migrated_db_url: str):
    engine = m.make_engine(migrated_db_url)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    def summary_statements(n_courses: int) -> int:
        with m.session_scope(engine) as s:
            _clear(s)
            for day in range(3):
                run = m.AuditRun(kind="nightly", params={}, started_at=T0 + timedelta(days=day))
                s.add(run)
                s.flush()
                for i in range(n_courses):
                    s.add(m.CourseAudit(run_id=run.id, platform="p1", context_id=f"c{i}", status="audited"))
                    f = m.Finding(run_id=run.id, category=m.FindingCategory.missing_in_lms, level="learner",
                                  platform="p1", context_id=f"c{i}", lms_user_id=f"u{day}",
                                  identity=f"missing_in_lms|p1|c{i}||u{day}", evidence={}, action="")
                    s.add(f)
            last = run.id
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            summary = load_summary(migrated_db_url, last)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert len(summary.new) == n_courses and len(summary.resolved) == n_courses
        return len(statements)

    assert summary_statements(2) == summary_statements(40)
