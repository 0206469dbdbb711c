"""The audit in batches (issue 12), through the real course-audit flow (a real Prefect server, real HTTP to
the sandbox LMS): a batch that dies after its write is retried with no double effect; a batch that keeps
failing leaves its courses unverified (never a false finding) and the run partial."""
from __future__ import annotations

import asyncio

import pytest
from sqlmodel import func, select

from pipeline.pipeline_helpers import serve_world

pytestmark = pytest.mark.slow


def _small_batches(served, n: int) -> None:
    with served.config.open("a", encoding="utf-8") as fh:
        fh.write(f"batch_courses = {n}\n")         # serve_world writes [audit] last


def _audit(served, prefect_env, monkeypatch) -> dict:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.audit import course_audit

    monkeypatch.setenv("PREFECT_API_URL", prefect_env["PREFECT_API_URL"])
    with temporary_settings(updates={PREFECT_API_URL: prefect_env["PREFECT_API_URL"]}):
        out = asyncio.run(course_audit(config=str(served.config), alerts=False))
    return out if isinstance(out, dict) else out.result()


def test_a_batch_that_dies_after_its_write_is_retried_without_double_effects(tmp_path, prefect_env, monkeypatch):
    import models as m
    from gradesync.audit import batch

    real, calls = batch.save_batch, []

    def dies_once_after_writing(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(args[3])                     # the batch id
        if len(calls) == 1:
            raise RuntimeError("worker lost after the batch's transaction committed")
        return out

    with serve_world(tmp_path, 11, "tiny", f"sqlite:///{tmp_path / 'gs.db'}") as served:
        _small_batches(served, 2)
        monkeypatch.setattr(batch, "save_batch", dies_once_after_writing)
        outcome = _audit(served, prefect_env, monkeypatch)
        with m.session_scope(m.make_engine(served.database_url)) as s:
            rows = list(s.exec(select(m.Finding).where(m.Finding.run_id == outcome["run_id"])))
            batches = list(s.exec(select(m.AuditBatch).where(m.AuditBatch.run_id == outcome["run_id"])))
            courses = s.exec(select(func.count()).select_from(m.CourseAudit)
                             .where(m.CourseAudit.run_id == outcome["run_id"])).one()
            in_scope = s.get(m.AuditRun, outcome["run_id"]).params["course_count"]
            cells = s.exec(select(m.ResyncTask.platform, m.ResyncTask.line_item_id, m.ResyncTask.lms_user_id)).all()
    assert len(batches) >= 3 and all(b.state == "completed" for b in batches)
    assert calls[0] == calls[1]                   # the same batch, written twice …
    found = [r.identity for r in rows]
    assert len(found) == len(set(found))          # … and its findings stored once
    assert set(found) == served.planted, (sorted(served.planted - set(found)), sorted(set(found) - served.planted))
    assert courses == in_scope                    # every course has one status
    assert len(cells) == len(set(cells))          # one resync task per cell


def test_a_batch_that_keeps_failing_leaves_its_courses_unverified_and_the_run_partial(tmp_path, prefect_env,
                                                                                       monkeypatch):
    import models as m
    from gradesync.audit import batch

    real = batch.save_batch
    doomed: list[int] = []

    def first_batch_never_lands(database_url, run_id, batch_id, *args, **kwargs):
        if not doomed:
            doomed.append(batch_id)
        if batch_id == doomed[0]:
            raise RuntimeError("database unreachable from this worker")
        return real(database_url, run_id, batch_id, *args, **kwargs)

    with serve_world(tmp_path, 12, "tiny", f"sqlite:///{tmp_path / 'gs.db'}") as served:
        _small_batches(served, 2)
        monkeypatch.setattr(batch, "save_batch", first_batch_never_lands)
        outcome = _audit(served, prefect_env, monkeypatch)
        with m.session_scope(m.make_engine(served.database_url)) as s:
            run = s.get(m.AuditRun, outcome["run_id"])
            failed = s.get(m.AuditBatch, doomed[0])
            lost = list(s.exec(select(m.CourseAudit).where(m.CourseAudit.run_id == run.id,
                                                           m.CourseAudit.batch_id == failed.id)))
            findings_there = s.exec(select(func.count()).select_from(m.Finding).where(
                m.Finding.run_id == run.id, m.Finding.platform == failed.platform,
                m.Finding.context_id.in_([c.context_id for c in lost]))).one()
    assert run.state == "partial" and outcome["state"] == "partial"
    assert failed.state == "failed" and "database unreachable" in failed.error
    assert len(lost) == failed.course_count and all(c.status == "unverified" for c in lost)
    assert all(c.reason.startswith(f"audit batch {failed.seq} failed") for c in lost)
    assert findings_there == 0                    # unverified ≠ gap
