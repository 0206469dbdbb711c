"""Claiming resync tasks atomically, so two workers never send the same task.

A claim is one committed transaction that moves due tasks to `claimed` with the worker's name:
- PostgreSQL: `SELECT … FOR UPDATE SKIP LOCKED` then `UPDATE … SET state = 'claimed'` in the same
  transaction — a second worker skips the rows the first is claiming instead of waiting for them, and
  never sees them as due afterwards.
- SQLite: `BEGIN IMMEDIATE` takes the single write lock before the select-and-update reads anything,
  so a concurrent claimer waits (busy timeout) and then sees the rows already claimed.
A claim is a lease: a worker that dies leaves `claimed` rows behind. They are claimable again after
`lease` — or at once when the claimer was a process on this host that no longer exists.
"""
from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, func, or_, select, text, true, tuple_, update

import models as m

T = m.ResyncTask.__table__.c
S = m.ResyncState
DEFAULT_LEASE = timedelta(minutes=10)
SENDABLE = (S.pending, S.approved, S.sent)


def worker_id(name: str | None = None) -> str:
    """`name@host#pid`: who holds a claim (the host and pid let a later run spot a dead claimer)."""
    return f"{name or 'resync'}@{socket.gethostname()}#{os.getpid()}"


def _dead_local_claimer(claimed_by: str | None) -> bool:
    """True when `claimed_by` names a process on this host that is gone."""
    if not claimed_by or "#" not in claimed_by or "@" not in claimed_by:
        return False
    head, _, pid_text = claimed_by.rpartition("#")
    host = head.rpartition("@")[2]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def release_dead_claims(engine: Engine, platforms: list[str]) -> int:
    """Hand back `claimed` tasks whose claimer was a process of this host that died (a crash between
    send and record): they become sendable again; the sender re-reads the LMS before re-sending."""
    released = 0
    with engine.begin() as conn:
        rows = conn.execute(select(T.id, T.claimed_by, T.approved_at).where(
            T.state == S.claimed, T.platform.in_(platforms))).all()
    for task_id, claimed_by, approved_at in rows:
        if not _dead_local_claimer(claimed_by):
            continue
        back = S.approved if approved_at is not None else S.pending
        with engine.begin() as conn:
            # Compare-and-set on the old claimer: a live worker that re-claimed it meanwhile keeps it.
            hit = conn.execute(update(m.ResyncTask.__table__).where(
                T.id == task_id, T.state == S.claimed, T.claimed_by == claimed_by).values(
                state=back, claimed_by=None, claimed_at=None, updated_at=m.utcnow()))
            released += hit.rowcount
    return released


def _claim_ids(engine: Engine, worker: str, pick, now: datetime) -> list[int]:
    """Run `pick` (a select of task ids) and claim what it returns, atomically (see the module doc)."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # Two statements in one transaction, not `UPDATE … WHERE id IN (SELECT … LIMIT n)`: PostgreSQL
            # may re-run such a subquery and update more than n rows. The selected rows stay locked
            # until the commit, so nobody can claim them in between.
            pick = pick.with_for_update(skip_locked=True)
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        ids = sorted(conn.execute(pick).scalars().all())
        if ids:
            conn.execute(update(m.ResyncTask.__table__).where(T.id.in_(ids))
                         .values(state=S.claimed, claimed_by=worker, claimed_at=now, updated_at=now))
        conn.commit()
    return ids


def claim_tasks(engine: Engine, worker: str, platforms: list[str], limit: int, *, due_before: datetime,
                lease: timedelta = DEFAULT_LEASE, exclude_courses: set[tuple[str, str]] | None = None) -> list[int]:
    """Claim up to `limit` sendable tasks of `platforms` for `worker`; returns their ids (committed).

    Sendable: pending / approved / sent (a send to re-check) whose next_attempt_at is not after
    `due_before` (the run's start, so a task handled in this run is not taken again by it), or
    `claimed` longer than `lease` ago. A task waiting for its line item (item_blocked_at) is not
    sendable: only `claim_probes` takes one per item."""
    if limit <= 0 or not platforms:
        return []
    now = m.utcnow()
    due = and_(T.state.in_(SENDABLE), T.item_blocked_at.is_(None),
               or_(T.next_attempt_at.is_(None), T.next_attempt_at <= due_before))
    stale = and_(T.state == S.claimed, T.claimed_at < now - lease)
    cond = and_(T.platform.in_(platforms), or_(due, stale), _courses_excluded(exclude_courses))
    return _claim_ids(engine, worker, select(T.id).where(cond).order_by(T.id).limit(limit), now)


def _courses_excluded(courses: set[tuple[str, str]] | None):
    cond = true()
    for platform, context_id in sorted(courses or ()):
        cond = and_(cond, ~and_(T.platform == platform, T.context_id == context_id))
    return cond


# Any number for pg_advisory_xact_lock: probe claims are serialised (the pick aggregates over items).
_PG_PROBE_LOCK = 0x70726F62  # "prob"


def claim_probes(engine: Engine, worker: str, platforms: list[str], limit: int,
                 exclude_courses: set[tuple[str, str]] | None = None) -> list[int]:
    """Claim one probe per line item that refused scores as inactive (issue 10 §3): the first (oldest)
    sendable task of each blocked item none of whose tasks is claimed right now. Called once per resync
    run, so an item that still refuses costs one POST a run; when the probe lands, the item's other
    tasks are released (store.apply)."""
    if limit <= 0 or not platforms:
        return []
    busy = select(T.platform, T.line_item_id).where(T.state == S.claimed, T.item_blocked_at.is_not(None))
    waiting = and_(T.platform.in_(platforms), T.item_blocked_at.is_not(None),
                   T.state.in_(SENDABLE), _courses_excluded(exclude_courses),
                   tuple_(T.platform, T.line_item_id).not_in(busy))
    now = m.utcnow()
    with engine.connect() as conn:
        # One transaction that holds the write lock (SQLite) or the probe lock (PostgreSQL) from the
        # pick to the commit: two claimers never probe the same item.
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_PROBE_LOCK})
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        first = conn.execute(select(func.min(T.id)).where(waiting).group_by(T.platform, T.line_item_id)).scalars().all()
        ids = sorted(first)[:limit]
        if ids:
            conn.execute(update(m.ResyncTask.__table__).where(T.id.in_(ids))
                         .values(state=S.claimed, claimed_by=worker, claimed_at=now, updated_at=now))
        conn.commit()
    return ids
