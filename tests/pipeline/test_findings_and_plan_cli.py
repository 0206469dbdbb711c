"""`gradesync findings` says which run and scope it shows and, with --latest, the current finding of every
cell across runs; `gradesync resync plan` shows what an approval would overwrite. Real console script over
a real SQLite database written with the models."""
from __future__ import annotations

import os
from datetime import datetime, timezone

import models as m
from gradesync.findings import identity_of
from pipeline.pipeline_helpers import REPO, run_cli

T = datetime(2026, 4, 1, 2, 0, tzinfo=timezone.utc)


def _finding(run_id: int, category: str, ctx: str, link: str, user: str, activity: str, **kw) -> m.Finding:
    return m.Finding(run_id=run_id, identity=identity_of(category, "canvas-test", ctx, link, user),
                     category=m.FindingCategory(category), level="learner", platform="canvas-test", context_id=ctx,
                     resource_link_id=link, activity_id=activity, line_item_id=f"https://canvas.test/li/{link}",
                     lms_user_id=user, account_id=f"acct-{user}", action=f"fix {category}", **kw)


def _run(s, run_id: int, audited: list[str], findings: list[m.Finding], **params) -> None:
    s.add(m.AuditRun(id=run_id, kind="course-audit", state="completed", started_at=T.replace(day=run_id),
                     params={"platforms": ["canvas-test"], "course_count": len(audited), "activities": None, **params}))
    s.flush()
    for ctx in audited:
        s.add(m.CourseAudit(run_id=run_id, platform="canvas-test", context_id=ctx, status="audited"))
    for f in findings:
        s.add(f)


def _env(tmp_path):
    env = {**os.environ, "GRADESYNC_LOG_FILE": str(tmp_path / "gs.log"), "COLUMNS": "160"}
    env.pop("GRADESYNC_DATABASE_URL", None)
    return env


def test_findings_names_its_run_and_scope_and_latest_keeps_the_newest_finding_per_cell(tmp_path, write_config):
    cfg = write_config(db_url=f"sqlite:///{tmp_path / 'gs.db'}")
    url = f"sqlite:///{tmp_path / 'gs.db'}"
    m.upgrade_database(url)
    with m.session_scope(m.make_engine(url)) as s:
        _run(s, 1, ["c1", "c2"], [_finding(1, "missing_in_lms", "c1", "rl1", "u1", "act-1"),
                                  _finding(1, "not_learner", "c2", "rl1", "u2", "act-1")])
        # run 2 audits c1 only: the cell (c1, rl1, u1) now has another cause
        _run(s, 2, ["c1"], [_finding(2, "score_mismatch", "c1", "rl1", "u1", "act-1", lms_score=6.0, lms_maximum=10.0,
                                     tool_score=8.0, tool_maximum=10.0)], courses=["c1"])
        # run 3 audits c2 for another activity only: it proves nothing about (c2, rl1, u2) of act-1
        _run(s, 3, ["c2"], [], activities=["act-2"])
    env = _env(tmp_path)

    plain = run_cli(["findings", "--config", str(cfg)], env, REPO, timeout=120)
    assert plain.returncode == 0, plain.stderr
    first = plain.stdout.splitlines()[0]
    assert first.startswith("Showing: findings of run 3 (course-audit, completed, started 2026-04-03 02:00 UTC)")
    assert "1 course(s) on canvas-test; activities act-2" in first

    latest = run_cli(["findings", "--latest", "--config", str(cfg)], env, REPO, timeout=120)
    assert latest.returncode == 0, latest.stderr
    assert "latest finding per cell across runs (1, 2)" in latest.stdout
    assert "score_mismatch" in latest.stdout and "not_learner" in latest.stdout
    assert "missing_in_lms" not in latest.stdout                # superseded by run 2's finding for that cell

    with m.session_scope(m.make_engine(url)) as s:
        _run(s, 4, ["c1", "c2"], [])                            # both courses audited, nothing found: resolved
    after = run_cli(["findings", "--latest", "--format", "json", "--config", str(cfg)], env, REPO, timeout=120)
    assert after.returncode == 0, after.stderr
    assert '"findings": []' in after.stdout and "none open" in after.stdout


def test_resync_plan_shows_what_an_approval_would_overwrite(tmp_path, write_config):
    cfg = write_config(db_url=f"sqlite:///{tmp_path / 'gs.db'}")
    url = f"sqlite:///{tmp_path / 'gs.db'}"
    m.upgrade_database(url)
    with m.session_scope(m.make_engine(url)) as s:
        s.add(m.Account(account_id="acct-u9", name="Luca Hernandez", email="luca@lakeside.test", origin="lti"))
        f = _finding(1, "manual_grade_conflict", "c1", "rl1", "u9", "act-1", tool_score=14.0, tool_maximum=20.0,
                     lms_score=19.0, lms_maximum=20.0,
                     evidence={"last_sent": "14/20", "last_sent_at": "2026-04-05T10:00:00+00:00", "lms_normalised": 0.95})
        _run(s, 1, ["c1"], [f])
        s.add(m.LmsResult(run_id=1, platform="canvas-test", context_id="c1", line_item_id=f.line_item_id, user_id="u9",
                          result_score=19.0, result_maximum=20.0, timestamp=datetime(2026, 4, 9, 3, 21, tzinfo=timezone.utc)))
        s.add(m.ResyncTask(identity=f.identity, platform="canvas-test", context_id="c1", resource_link_id="rl1",
                           line_item_id=f.line_item_id, lms_user_id="u9", account_id="acct-u9", score_given=14.0,
                           score_maximum=20.0, category=m.FindingCategory.manual_grade_conflict,
                           state=m.ResyncState.needs_approval, updated_run_id=1, created_run_id=1))
    proc = run_cli(["resync", "plan", "--config", str(cfg)], {**_env(tmp_path), "COLUMNS": "300"}, REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "LMS now (overwritten)" in out and "19/20" in out and "9 Apr 2026 03:21 UTC" in out
    assert "14/20" in out and "Luca Hernandez" in out
    assert "LMS shows 19/20 since 9 Apr; the tool last sent 14/20 on 5 Apr" in out
