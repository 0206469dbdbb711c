"""Schema and database helpers: migrations on an empty database, no drift between models and migrations,
the one-open-resync-task rule, bulk_upsert counts, aware-UTC datetimes — on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import SQLModel
from typer.testing import CliRunner

from cli.main import app
from gradesync.findings import CATEGORIES
from models import (
    AlertLog, AuditRun, FindingCategory, Platform, ResyncState, ResyncTask, bulk_upsert, current_revision,
    dispose_engine,
    make_engine, session_scope, upgrade_database,
)
from models.db import alembic_config

EXPECTED_TABLES = {
    "platform", "course", "account", "identity", "link", "completion", "passback", "import_batch",
    "import_rejection", "audit_run", "course_audit", "lms_line_item", "lms_result", "lms_member", "finding",
    "resync_task", "resync_attempt", "alert_log",
}


def head() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def test_migrations_bring_an_empty_database_to_head_without_drift(db_url):
    assert current_revision(db_url) is None
    upgrade_database(db_url)
    assert current_revision(db_url) == head()
    engine = make_engine(db_url)
    assert EXPECTED_TABLES <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
    assert diff == [], f"models and migrations differ (write a migration): {diff}"
    upgrade_database(db_url, force=True)            # repeating is harmless
    assert current_revision(db_url) == head()


def test_db_upgrade_command(db_url, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)                      # no ./gradesync.toml: defaults + env override
    monkeypatch.setenv("GRADESYNC_DATABASE_URL", db_url)
    monkeypatch.delenv("GRADESYNC_CONFIG", raising=False)
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"is at revision {head()}" in result.output
    assert current_revision(db_url) == head()


def test_finding_categories_are_exactly_design_md():
    assert [c.value for c in FindingCategory] == list(CATEGORIES)
    assert [c.name for c in FindingCategory] == list(CATEGORIES)


def _task(**kw) -> ResyncTask:
    base = dict(identity="missing_in_lms|p|c|rl|u1", platform="p", context_id="c", resource_link_id="rl",
                line_item_id="https://lms.test/li/1", lms_user_id="u1", score_given=8, score_maximum=10,
                category=FindingCategory.missing_in_lms)
    return ResyncTask(**{**base, **kw})


def test_one_open_resync_task_per_line_item_and_user(migrated_db_url):
    engine = make_engine(migrated_db_url)
    with session_scope(engine) as s:
        s.add(_task())
    with pytest.raises(IntegrityError):
        with session_scope(engine) as s:
            s.add(_task(state=ResyncState.approved))        # a second open task for the same key
    with session_scope(engine) as s:
        s.add(_task(state=ResyncState.verified))             # closed tasks are history: any number
        s.add(_task(state=ResyncState.cancelled))
        s.add(_task(lms_user_id="u2"))                       # another learner
        s.add(_task(line_item_id="https://lms.test/li/2"))   # another line item
    with session_scope(engine) as s:
        open_task = s.exec(select(ResyncTask).where(ResyncTask.lms_user_id == "u1",
                                                    ResyncTask.line_item_id == "https://lms.test/li/1",
                                                    ResyncTask.state == ResyncState.pending)).scalar_one()
        open_task.state = ResyncState.verified
    with session_scope(engine) as s:
        s.add(_task())                                       # the key is free again once the task closed
    with session_scope(engine) as s:
        states = sorted(t.state.value for t in s.exec(select(ResyncTask)).scalars())
    assert states == ["cancelled", "pending", "pending", "pending", "verified", "verified"]


def test_bulk_upsert_counts_inserted_updated_unchanged(migrated_db_url):
    engine = make_engine(migrated_db_url)
    rows = [{"name": f"p{i}", "vendor": "canvas", "issuer": f"https://p{i}.test", "client_id": "c",
             "updated_at": datetime(2025, 1, 1, tzinfo=timezone.utc)} for i in range(3)]
    cols = ("vendor", "issuer", "client_id")
    with session_scope(engine) as s:
        assert bulk_upsert(s, Platform, rows, ("name",), cols) == (3, 0, 0)
    with session_scope(engine) as s:
        assert bulk_upsert(s, Platform, rows, ("name",), cols) == (0, 0, 3)
    changed = [dict(rows[0], vendor="moodle"), rows[1], rows[2],
               dict(rows[0], name="p3", updated_at=datetime(2025, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))))]
    with session_scope(engine) as s:
        assert bulk_upsert(s, Platform, changed, ("name",), cols) == (1, 1, 2)
    with session_scope(engine) as s:
        got = {p.name: p for p in s.exec(select(Platform)).scalars()}
    assert got["p0"].vendor == "moodle" and got["p1"].vendor == "canvas"
    assert got["p3"].updated_at == datetime(2025, 1, 1, 0, tzinfo=timezone.utc)
    assert got["p3"].updated_at.tzinfo is not None
    with session_scope(engine) as s:                     # empty input, do-nothing mode
        assert bulk_upsert(s, Platform, [], ("name",), cols) == (0, 0, 0)
        assert bulk_upsert(s, Platform, [dict(rows[0], vendor="d2l")], ("name",), ()) == (0, 0, 1)


def test_bulk_upsert_json_and_datetime_columns(migrated_db_url):
    engine = make_engine(migrated_db_url)
    with session_scope(engine) as s:
        run = AuditRun(kind="nightly", params={"platform": "p"})
        s.add(run)
        s.flush()
        run_id = run.id
    sent = datetime(2025, 5, 1, 12, tzinfo=timezone(timedelta(hours=-4)))
    row = {"run_id": run_id, "kind": "digest", "route": "default", "incident_key": "", "target": "hooks.slack.test",
           "status": "sent", "attempts": 1, "payload": {"blocks": [{"type": "header"}], "n": 1}, "sent_at": sent}
    key = ("run_id", "kind", "route", "incident_key")
    upd = ("target", "status", "attempts", "payload", "sent_at")
    with session_scope(engine) as s:
        assert bulk_upsert(s, AlertLog, [row], key, upd) == (1, 0, 0)
        assert bulk_upsert(s, AlertLog, [row], key, upd) == (0, 0, 1)
        assert bulk_upsert(s, AlertLog, [dict(row, payload={"n": 2})], key, upd) == (0, 1, 0)
    with session_scope(engine) as s:
        log = s.exec(select(AlertLog)).scalar_one()
    assert log.payload == {"n": 2}
    assert log.sent_at == datetime(2025, 5, 1, 16, tzinfo=timezone.utc)


def test_naive_datetimes_are_refused(migrated_db_url):
    with pytest.raises(StatementError, match="naive datetime refused"):
        with session_scope(make_engine(migrated_db_url)) as s:
            s.add(AuditRun(kind="nightly", started_at=datetime(2025, 1, 1)))


def test_engine_is_cached_and_sqlite_connections_enforce_foreign_keys(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    engine = make_engine(url)
    assert make_engine(url) is engine
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    upgrade_database(url)
    with pytest.raises(IntegrityError):
        with session_scope(engine) as s:                      # course.platform references platform.name
            s.connection().execute(text("INSERT INTO course (platform, context_id) VALUES ('nope', 'c')"))


def test_upgrading_a_0001_database_keeps_its_records_and_reimport_adds_nothing(db_url, write_config, tmp_path):
    """Migration 0002 backfills the passback digest and the completion launch context exactly as the
    importer computes them: rows imported before the upgrade are recognised by the next import."""
    import subprocess
    import sys

    import sqlalchemy as sa
    from alembic import command

    from .exports import CANVAS, write_export

    command.upgrade(alembic_config(db_url), "0001_initial")
    utc = timezone.utc
    t = {name: sa.table(name, *[sa.column(c, sa.DateTime(timezone=True) if c in ("timestamp", "completed_at",
                                                                                   "updated_at") else None)
                                for c in cols])
         for name, cols in {
             "platform": ("name", "vendor", "issuer", "client_id", "updated_at"),
             "account": ("account_id", "email", "name", "origin"),
             "completion": ("account_id", "activity_id", "score_given", "score_maximum", "completed_at",
                            "platform", "context_id", "resource_link_id"),
             "passback": ("account_id", "platform", "context_id", "resource_link_id", "line_item_id",
                          "lms_user_id", "score_given", "score_maximum", "timestamp", "status_code", "response"),
         }.items()}
    with make_engine(db_url).begin() as c:        # what the 0001-era importer stored for tests/foundation/exports.py
        c.execute(t["platform"].insert(), [dict(name="canvas-test", vendor="canvas", issuer="https://canvas.test",
                                                client_id="client-canvas-test", updated_at=datetime.now(utc))])
        c.execute(t["account"].insert(), [dict(account_id="acc-1", email="ada@example.edu", name="Ada", origin="lti"),
                                          dict(account_id="acc-2", email="Ada@Example.edu", name="Ada (manual)",
                                               origin="manual")])
        c.execute(t["completion"].insert(), [
            dict(account_id="acc-1", activity_id="act-1", score_given=8.0, score_maximum=10.0,
                 completed_at=datetime(2025, 3, 1, 9, tzinfo=utc), platform="canvas-test", context_id="101",
                 resource_link_id="rl-1"),
            dict(account_id="acc-2", activity_id="act-1", score_given=9.5, score_maximum=10.0,
                 completed_at=datetime(2025, 3, 2, 10, tzinfo=utc), platform=None, context_id=None,
                 resource_link_id=None)])
        c.execute(t["passback"].insert(), [
            dict(account_id="acc-1", platform="canvas-test", context_id="101", resource_link_id="rl-1",
                 line_item_id=f"{CANVAS}/line_items/7", lms_user_id="sub-1", score_given=8.0, score_maximum=10.0,
                 timestamp=datetime(2025, 3, 1, 9, 0, 1, tzinfo=utc), status_code=200, response="{}"),
            dict(account_id=None, platform="canvas-test", context_id="101", resource_link_id="rl-1",
                 line_item_id=None, lms_user_id="sub-3", score_given=None, score_maximum=None,
                 timestamp=datetime(2025, 3, 1, 9, 0, 2, tzinfo=utc), status_code=422,
                 response="assignment unpublished")])
    dispose_engine(db_url)

    config = write_config(db_url=db_url)
    result = subprocess.run([str(Path(sys.executable).parent / "gradesync"), "--config", str(config), "import",
                             str(write_export(tmp_path / "export"))], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert current_revision(db_url) == head()
    inserted = {line.split("│")[1].strip(): line.split("│")[3].strip()
                for line in result.stdout.splitlines() if ".csv" in line}
    assert inserted["passbacks.csv"] == "0"          # both stored rows recognised
    assert inserted["completions.csv"] == "1"        # acc-3's completion is the only new one
