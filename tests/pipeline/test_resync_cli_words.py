"""`gradesync resync run` as people read it: the outcomes as a table in words (not a Python dict), and a
score the platform accepted but does not show is reported at once, in words (a Moodle teacher override,
lti-platform-behavior.md §4.3). Real console script, real Prefect server, sandbox LMS over HTTP."""
from __future__ import annotations

import pytest

import models as m
from gradesync.resync.plan import approve
from pipeline.pipeline_helpers import REPO, run_cli
from tests.resync.world_helpers import served_world

pytestmark = pytest.mark.slow


def test_resync_run_prints_a_table_in_words_and_accepted_but_not_shown_at_once(tmp_path, prefect_env):
    url = f"sqlite:///{tmp_path / 'gs.db'}"
    with served_world(tmp_path, url) as served:
        moodle = next(c for c in served.cells if c.category == "manual_grade_conflict" and c.platform.startswith("moodle"))
        result = approve(url, "ana.lopez", [f.id for f in _conflicts(url, moodle.platform)])
        assert result.approved, result.problems
        env = {**prefect_env, "COLUMNS": "200", "GRADESYNC_LOG_FILE": str(tmp_path / "gs.log")}
        proc = run_cli(["resync", "run", "--config", str(served.config)], env, REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "{'" not in out and "resync run" in out and "meaning" in out
    assert "sent; the LMS shows the score" in out                         # verified, in words
    line = next(ln for ln in out.splitlines() if ln.startswith("accepted but not shown"))
    assert moodle.platform in line and moodle.context_id in line
    assert f"accepted {moodle.score_given:g}/{moodle.score_maximum:g}" in line and "override or lock" in line


def _conflicts(url: str, platform: str) -> list[m.Finding]:
    from sqlmodel import select
    with m.session_scope(m.make_engine(url)) as s:
        return list(s.exec(select(m.Finding).where(m.Finding.platform == platform,
                                                   m.Finding.category == m.FindingCategory.manual_grade_conflict)))
