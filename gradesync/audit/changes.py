"""What changed since each course's previous audit, for a whole run in a fixed number of statements.

Per course of the run, the baseline is the latest earlier run (resync runs excluded) in which the course
was *audited*; its findings inside the run's activity scope count as known. A finding of this run is new
when its identity is neither in that baseline nor in the course's latest earlier run of any status (when
that is another run: an unverified course's course-level finding is known too). Resolved: baseline
findings in scope whose identity is gone, only for courses audited in this run (an unverified course
proves nothing resolved). Both are set-based over the run (indexes ix_course_audit_course_run,
ix_finding_run_course, uq_finding_run_identity), never one query per course.
"""
from __future__ import annotations

from sqlalchemy import and_, case, exists, func, or_, select, true
from sqlalchemy.orm import aliased

import models as m

HISTORY_RUNS = 30


def _previous_runs(run_id: int):
    """Subquery: each course of the run with its status and its previous runs (last audited, last any)."""
    cur, mine, ca = aliased(m.CourseAudit), aliased(m.CourseAudit), aliased(m.CourseAudit)
    earlier = (select(ca.platform, ca.context_id,
                      func.max(case((ca.status == "audited", ca.run_id))).label("last_audited"),
                      func.max(ca.run_id).label("last_any"))
               .join(m.AuditRun, m.AuditRun.id == ca.run_id)
               .where(ca.run_id < run_id, m.AuditRun.kind != "resync",
                      # only the run's own courses: the (platform, context_id, run_id) index serves it
                      exists().where(mine.run_id == run_id, mine.platform == ca.platform,
                                     mine.context_id == ca.context_id))
               .group_by(ca.platform, ca.context_id).subquery("earlier"))
    return (select(cur.id.label("course_audit_id"), cur.platform, cur.context_id, cur.status,
                   earlier.c.last_audited, earlier.c.last_any)
            .join(earlier, and_(earlier.c.platform == cur.platform, earlier.c.context_id == cur.context_id))
            .where(cur.run_id == run_id).subquery("prev"))


def _in_scope(finding, activities: set[str] | None):
    """SQL twin of persist.in_scope: a run narrowed to some activities says nothing about the others."""
    if activities is None:
        return true()
    return or_(finding.activity_id.is_(None), finding.activity_id.in_(sorted(activities)))


def new_identities(session, run_id: int, activities: set[str] | None) -> set[str]:
    """Identities of this run's findings seen in neither the course's baseline nor its last run of any status."""
    prev = _previous_runs(run_id)
    f, base, last = aliased(m.Finding), aliased(m.Finding), aliased(m.Finding)
    in_baseline = exists().where(base.run_id == prev.c.last_audited, base.identity == f.identity,
                                 base.platform == f.platform, base.context_id == f.context_id,
                                 _in_scope(base, activities))
    in_last_other = exists().where(last.run_id == prev.c.last_any, last.identity == f.identity,
                                   last.platform == f.platform, last.context_id == f.context_id,
                                   or_(prev.c.last_audited.is_(None), prev.c.last_any != prev.c.last_audited))
    cur = aliased(m.CourseAudit)
    # Courses with no earlier run at all have no row in `prev`: every finding of theirs is new.
    stmt = (select(f.identity)
            .join(cur, and_(cur.run_id == run_id, cur.platform == f.platform, cur.context_id == f.context_id))
            .outerjoin(prev, prev.c.course_audit_id == cur.id)
            .where(f.run_id == run_id, ~in_baseline, ~in_last_other))
    return set(session.scalars(stmt))


def resolved_findings(session, run_id: int, activities: set[str] | None) -> list[m.Finding]:
    """Baseline findings (in scope) of the courses audited in this run whose identity this run lacks."""
    prev = _previous_runs(run_id)
    base, now = aliased(m.Finding), aliased(m.Finding)
    still = exists().where(now.run_id == run_id, now.identity == base.identity)
    stmt = (select(base)
            .join(prev, and_(base.run_id == prev.c.last_audited, base.platform == prev.c.platform,
                             base.context_id == prev.c.context_id))
            .where(prev.c.status == "audited", _in_scope(base, activities), ~still)
            .order_by(prev.c.course_audit_id, base.id))
    return list(session.scalars(stmt))


def run_changes(session, run_id: int, activities: set[str] | None) -> tuple[set[str], list[m.Finding]]:
    """(identities of new findings, resolved findings) of a run: two statements whatever its size."""
    return new_identities(session, run_id, activities), resolved_findings(session, run_id, activities)


def history(session, run_id: int) -> list[tuple[str, dict[str, int]]]:
    """Findings per night by category over the latest audit runs (the last run of each day counts):
    one statement for the runs, one for their counts."""
    runs = session.execute(select(m.AuditRun.id, m.AuditRun.started_at)
                        .where(m.AuditRun.id <= run_id, m.AuditRun.kind != "resync")
                        .order_by(m.AuditRun.id.desc()).limit(HISTORY_RUNS * 3)).all()
    by_day: dict[str, int] = {}
    for rid, started_at in runs:
        by_day.setdefault(started_at.date().isoformat(), rid)
    days = sorted(by_day.items())[-HISTORY_RUNS:]
    counts: dict[int, dict[str, int]] = {rid: {} for _, rid in days}
    if days:
        rows = session.execute(select(m.Finding.run_id, m.Finding.category, func.count())
                            .where(m.Finding.run_id.in_(list(counts)))
                            .group_by(m.Finding.run_id, m.Finding.category)).all()
        for rid, category, n in rows:
            counts[rid][category.value if hasattr(category, "value") else str(category)] = n
    return [(day, counts[rid]) for day, rid in days]
