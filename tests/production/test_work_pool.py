"""The production stack, for real (issue 12 §6): `prefect server start` on PostgreSQL (asyncpg), a process
work pool, two workers, `prefect deploy --all` from prefect.yaml; the nightly deployment runs on a medium
sandbox world with two platforms, its batches go to the work pool.

Shown: batches ran on both workers; the findings equal an in-process run's; every developer key's
requests in flight (counted by the sandbox) never exceeded its limit across the workers.

Needs PostgreSQL on 127.0.0.1:5432 (the machine's). `make test` skips it when none answers; CI sets
GRADESYNC_REQUIRE_PRODUCTION_STACK=1 so a missing stack fails instead of skipping.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from scripts.prefect_stack import StackUnavailable, pg_answers, prefect_stack
from tests.pipeline.pipeline_helpers import REPO, run_cli, serve_world

pytestmark = pytest.mark.slow


def _unavailable(reason: str):
    if os.environ.get("GRADESYNC_REQUIRE_PRODUCTION_STACK") == "1":
        pytest.fail(f"production stack required (GRADESYNC_REQUIRE_PRODUCTION_STACK=1): {reason}")
    pytest.skip(reason)


@pytest.fixture
def production_stack(tmp_path):
    """A Prefect server on PostgreSQL, the process work pool, deployments from prefect.yaml, two workers
    (scripts/prefect_stack.py)."""
    if not pg_answers():
        _unavailable("no PostgreSQL on 127.0.0.1:5432 for the Prefect server")
    try:
        with prefect_stack(tmp_path / "stack", workers=("w1", "w2"), limit=2, require_postgres=True) as stack:
            yield stack
    except StackUnavailable as e:
        _unavailable(str(e))


def _run_nightly(stack, config: Path) -> dict:
    """Start the nightly deployment like the schedule would, and wait for it."""
    code = (
        "import asyncio, json, sys\n"
        "from prefect.deployments import run_deployment\n"
        "run = run_deployment('nightly-audit/nightly-audit', parameters={'config': sys.argv[1], 'alerts': False,"
        " 'resync': False}, timeout=900)\n"
        "print(json.dumps({'state': run.state.type.value, 'name': run.state.name, 'message': run.state.message}))\n")
    r = subprocess.run([sys.executable, "-c", code, str(config)], env=stack.env, cwd=REPO, capture_output=True,
                       text=True, timeout=960)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_nightly_on_two_workers_equals_one_process_and_keeps_the_budget(tmp_path, production_stack):
    import models as m
    from sqlmodel import select

    stack = production_stack
    db = stack.app_db
    # Two platforms of 12 courses, 4 courses a batch: 6 batches, two platforms side by side.
    with serve_world(tmp_path, 7, "bench", db, courses=12, items=4, learners=10,
                     profiles=("canvas", "moodle")) as served:
        with served.config.open("a", encoding="utf-8") as fh:
            fh.write("batch_courses = 4\n")        # appended to the [audit] table serve_world wrote last
        limits = {r.name: r.key_in_flight_limit for r in __import__("gradesync.settings", fromlist=["x"])
                  .load_settings(served.config).platforms}
        served.sandbox.control.reset_counters()

        outcome = _run_nightly(stack, served.config)
        assert outcome["state"] == "COMPLETED", (outcome, stack.worker_logs())
        counters = served.sandbox.control.counters()

        with m.session_scope(m.make_engine(db)) as s:
            nightly = s.exec(select(m.AuditRun).where(m.AuditRun.kind == "nightly")).one()
            batches = list(s.exec(select(m.AuditBatch).where(m.AuditBatch.run_id == nightly.id)))
            nightly_findings = {f.identity for f in s.exec(select(m.Finding).where(m.Finding.run_id == nightly.id))}
        assert batches and all(b.state == "completed" for b in batches), [(b.seq, b.state, b.error) for b in batches]
        assert {b.worker for b in batches} == {"w1", "w2"}, [(b.seq, b.worker) for b in batches]
        assert all(b.flow_run_id for b in batches)
        for reg, peak in counters["peak_in_flight"].items():
            assert peak <= limits[reg], (reg, peak, limits[reg])

        # The same audit in one process (no work pool): the same findings.
        r = run_cli(["--config", str(served.config), "audit", "--no-alerts"],
                    {**stack.env}, tmp_path, timeout=900)
        assert r.returncode in (0, 3), r.stdout[-2000:] + r.stderr[-2000:]
        with m.session_scope(m.make_engine(db)) as s:
            single = s.exec(select(m.AuditRun).where(m.AuditRun.kind == "course-audit")).one()
            single_findings = {f.identity for f in s.exec(select(m.Finding).where(m.Finding.run_id == single.id))}
        if nightly_findings != single_findings:
            # Seen once in a full CI-like run (a planted course_unreachable missing from the nightly, not
            # reproduced in 6 runs alone or under load): say what each course's status was.
            with m.session_scope(m.make_engine(db)) as s:
                statuses = [(c.platform, c.context_id, c.status, c.reason, c.batch_id) for c in
                            s.exec(select(m.CourseAudit).where(m.CourseAudit.run_id == nightly.id))]
            print("nightly course statuses:", statuses)
            print("nightly batches:", [(b.seq, b.state, b.error, b.counts) for b in batches])
            print(stack.worker_logs()[-6000:])
        assert nightly_findings and nightly_findings == single_findings

