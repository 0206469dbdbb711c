"""`gradesync night` through the real CLI (a real Prefect flow run, real HTTP to the sandbox LMS): the
first night reads every course; the next reads only what the night plan says, naming why the others
are left out; `--full` reads them all again."""
from __future__ import annotations

import pytest
from sqlmodel import select

from pipeline.pipeline_helpers import REPO, run_cli, serve_world

pytestmark = pytest.mark.slow


def _night(served, prefect_env, *extra: str):
    proc = run_cli(["night", "--config", str(served.config), "--no-alerts", "--no-resync", *extra], prefect_env, REPO)
    assert proc.returncode in (0, 3), proc.stderr[-3000:] + proc.stdout[-2000:]
    return proc


def test_night_reads_what_the_plan_says_and_full_reads_everything(tmp_path, prefect_env):
    import models as m

    with serve_world(tmp_path, 11, "tiny", f"sqlite:///{tmp_path / 'gs.db'}") as served:
        first = _night(served, prefect_env)
        second = _night(served, prefect_env)
        third = _night(served, prefect_env, "--full")
        with m.session_scope(m.make_engine(served.database_url)) as s:
            runs = list(s.exec(select(m.AuditRun).where(m.AuditRun.kind == "nightly").order_by(m.AuditRun.id)))
            total = s.exec(select(m.Course)).all()
            read = [len(s.exec(select(m.CourseAudit).where(m.CourseAudit.run_id == r.id)).all()) for r in runs]
    assert len(runs) == 3
    assert read[0] == len(total) == read[2]                     # never audited, then --full: every course
    assert runs[2].params["full"] is True and not runs[2].params["not_read"]
    left_out = runs[1].params["not_read"]
    assert read[1] + sum(left_out.values()) == len(total)       # every course is read or said why not
    assert read[1] < len(total) and left_out
    assert "not read tonight" in second.stdout and "not read tonight" not in first.stdout + third.stdout
