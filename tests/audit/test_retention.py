"""purge_snapshots keeps the LMS snapshot rows of the newest N runs that have snapshots and deletes the
others' in chunks; findings and course statuses of every run stay."""
from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlmodel import select

import models as m
from gradesync.audit.retention import SNAPSHOT_TABLES, purge_snapshots


def _history(s) -> list[int]:
    """Six runs; the 4th (a resync) has no snapshot. Run i has i line items, 3i results, 2i members."""
    ids = []
    for i in range(1, 7):
        run = m.AuditRun(kind="resync" if i == 4 else "nightly")
        s.add(run)
        s.flush()
        ids.append(run.id)
        s.add(m.CourseAudit(run_id=run.id, platform="p", context_id="c", status="audited"))
        s.add(m.Finding(run_id=run.id, identity=f"missing_in_lms|p|c||u{i}", category=m.FindingCategory.missing_in_lms,
                        level="learner", platform="p", context_id="c", evidence={}, action=""))
        if i == 4:
            continue
        for j in range(i):
            s.add(m.LmsLineItem(run_id=run.id, platform="p", context_id="c", line_item_id=f"li-{j}"))
        for j in range(3 * i):
            s.add(m.LmsResult(run_id=run.id, platform="p", context_id="c", line_item_id="li-0", user_id=f"u{j}"))
        for j in range(2 * i):
            s.add(m.LmsMember(run_id=run.id, platform="p", context_id="c", user_id=f"u{j}", roles=[]))
    return ids


def _runs_with_rows(s, model) -> dict[int, int]:
    return dict(s.exec(select(model.run_id, func.count()).group_by(model.run_id)).all())


@pytest.mark.parametrize("given", ["url", "session"])
def test_purge_keeps_the_newest_runs_with_snapshots(migrated_db_url, given):
    engine = m.make_engine(migrated_db_url)
    with m.session_scope(engine) as s:
        ids = _history(s)
    if given == "url":
        deleted = purge_snapshots(migrated_db_url, keep_runs=3, chunk_rows=4)
    else:
        with m.session_scope(engine) as s:
            deleted = purge_snapshots(s, keep_runs=3, chunk_rows=4)
    # kept: runs 6, 5, 3 (run 4 has none); purged: runs 1 and 2 = (1 + 3 + 2) × (1 + 2) rows
    assert deleted == 6 * 3
    kept = [ids[2], ids[4], ids[5]]
    with m.session_scope(engine) as s:
        for model, per_run in ((m.LmsLineItem, 1), (m.LmsResult, 3), (m.LmsMember, 2)):
            i_of = {rid: n + 1 for n, rid in enumerate(ids)}
            assert _runs_with_rows(s, model) == {rid: per_run * i_of[rid] for rid in kept}
        assert sorted(s.exec(select(m.Finding.run_id)).all()) == ids          # findings of every run stay
        assert sorted(s.exec(select(m.CourseAudit.run_id)).all()) == ids
    assert purge_snapshots(migrated_db_url, keep_runs=3) == 0                # nothing left to purge


def test_fewer_runs_than_kept_purges_nothing(migrated_db_url):
    with m.session_scope(m.make_engine(migrated_db_url)) as s:
        _history(s)
    assert purge_snapshots(migrated_db_url, keep_runs=5) == 0
    assert purge_snapshots(migrated_db_url, keep_runs=4) == 1 + 3 + 2
    with m.session_scope(m.make_engine(migrated_db_url)) as s:
        assert all(len(_runs_with_rows(s, t)) == 4 for t in SNAPSHOT_TABLES)
    with pytest.raises(ValueError):
        purge_snapshots(migrated_db_url, keep_runs=0)
