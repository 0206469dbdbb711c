"""How far an audit run has got, read from the database: any process can watch a run whose batches
run elsewhere (a worker on another machine writes its courses' `course_audit` rows as it finishes)."""
from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import func
from sqlmodel import select

import models as m


class RunProgress(NamedTuple):
    run_id: int
    done: int      # courses with a status row (audited or unverified)
    total: int     # courses in the run's scope (params["course_count"])


def newest_run_id(database_url: str) -> int:
    """The highest audit_run id so far (0 when there is none): watch for runs started after it."""
    with m.session_scope(m.make_engine(database_url)) as s:
        return s.exec(select(func.max(m.AuditRun.id))).one() or 0


def run_progress(database_url: str, after_run_id: int, *, kind: str | None = None) -> RunProgress | None:
    """The newest run (of `kind`, if given) with id > after_run_id and how many of its courses are done;
    None while no such run has started."""
    with m.session_scope(m.make_engine(database_url)) as s:
        query = select(m.AuditRun).where(m.AuditRun.id > after_run_id)
        if kind is not None:
            query = query.where(m.AuditRun.kind == kind)
        run = s.exec(query.order_by(m.AuditRun.id.desc())).first()
        if run is None:
            return None
        done = s.exec(select(func.count()).select_from(m.CourseAudit)
                      .where(m.CourseAudit.run_id == run.id)).one()
        return RunProgress(run.id, int(done), int((run.params or {}).get("course_count") or 0))
