"""Snapshot retention: the LMS snapshot tables (lms_line_item, lms_result, lms_member) grow by every
course's every result each night; only the newest `settings.audit.snapshot_runs_kept` audit runs that
have snapshots keep theirs. Findings and course statuses are history and are never purged."""
from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete, exists, or_, select
from sqlmodel import Session

import models as m

SNAPSHOT_TABLES = (m.LmsResult, m.LmsMember, m.LmsLineItem)
CHUNK_ROWS = 50_000


def purge_snapshots(db: str | Session, keep_runs: int, *, chunk_rows: int = CHUNK_ROWS) -> int:
    """Delete the snapshot rows of all but the newest `keep_runs` runs that have snapshots; return the
    number of rows deleted. Given a URL, each chunk of `chunk_rows` is its own transaction (a purge of
    millions of rows never holds one long transaction); given a session, everything runs in it."""
    if keep_runs < 1:
        raise ValueError("keep_runs must be at least 1")
    if isinstance(db, Session):
        return _purge(lambda work: work(db), keep_runs, chunk_rows)
    engine = m.make_engine(db)

    def own_transaction(work):
        with m.session_scope(engine) as s:
            return work(s)

    return _purge(own_transaction, keep_runs, chunk_rows)


def _purge(run: Callable, keep_runs: int, chunk_rows: int) -> int:
    cutoff = run(lambda s: _cutoff(s, keep_runs))
    if cutoff is None:
        return 0
    total = 0
    for model in SNAPSHOT_TABLES:
        while True:
            n = run(lambda s: _delete_chunk(s, model, cutoff, chunk_rows))
            total += n
            if n < chunk_rows:
                break
    return total


def _cutoff(s, keep_runs: int) -> int | None:
    """The oldest run id to keep: the keep_runs-th newest run with snapshot rows (None: nothing to purge).
    One statement over audit_run with an indexed EXISTS per snapshot table, not a DISTINCT over them."""
    has_snapshot = or_(*[exists().where(t.run_id == m.AuditRun.id) for t in SNAPSHOT_TABLES])
    return s.scalars(select(m.AuditRun.id).where(has_snapshot).order_by(m.AuditRun.id.desc())
                  .offset(keep_runs - 1).limit(1)).first()


def _delete_chunk(s, model, cutoff: int, chunk_rows: int) -> int:
    """Delete up to chunk_rows rows of runs older than the cutoff (by the run_id index); return how many."""
    ids = select(model.id).where(model.run_id < cutoff).limit(chunk_rows)
    # no ORM synchronisation: it would fetch every deleted id back (RETURNING) for nothing
    stmt = delete(model).where(model.id.in_(ids)).execution_options(synchronize_session=False)
    return s.execute(stmt).rowcount
