"""Errors a user can cause, through the real `gradesync` console script: one line on stderr with the cause,
exit code 1, no traceback (it goes to the log file the line names; --debug prints it); and no false
all-clear: an audit with no course in scope stops before Prefect starts and says why."""
from __future__ import annotations

import os
import socket
import sqlite3
from pathlib import Path

import pytest

from pipeline.pipeline_helpers import REPO, run_cli

UNREACHABLE_PG = "postgresql+psycopg://postgres@127.0.0.1:9/none"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "GRADESYNC_LOG_FILE": str(tmp_path / "gradesync.log"),
           "PREFECT_HOME": str(tmp_path / "prefect-home"), **extra}
    env.pop("PREFECT_API_URL", None)
    env.pop("GRADESYNC_DEBUG", None)
    return env


def assert_one_line(proc, *needles: str, code: int = 1) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], err[-2000:])
    assert "Traceback" not in err and "Traceback" not in proc.stdout, err[-3000:]
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


def test_audit_with_a_missing_config_exits_1(tmp_path):
    proc = run_cli(["audit", "--config", str(tmp_path / "nope.toml")], _env(tmp_path), REPO, timeout=120)
    assert_one_line(proc, "config file not found")


@pytest.mark.parametrize("args", [["audit"], ["findings"], ["resync", "plan"], ["resync", "approve", "1", "--by", "me"],
                                  ["db", "upgrade"]])
def test_an_unreachable_database_is_one_line_with_the_log_file(tmp_path, write_config, args):
    env = _env(tmp_path, GRADESYNC_DATABASE_URL=UNREACHABLE_PG)
    proc = run_cli([*args, "--config", str(write_config())], env, REPO, timeout=180)
    err = assert_one_line(proc, "Connection refused")
    if args != ["db", "upgrade"]:           # db upgrade words it itself, with the URL
        assert f"traceback in {tmp_path / 'gradesync.log'}" in err
        assert "Traceback (most recent call last)" in (tmp_path / "gradesync.log").read_text()


def test_debug_prints_the_traceback(tmp_path, write_config):
    env = _env(tmp_path, GRADESYNC_DATABASE_URL=UNREACHABLE_PG)
    proc = run_cli(["--debug", "resync", "plan", "--config", str(write_config())], env, REPO, timeout=180)
    assert proc.returncode == 1 and "Traceback (most recent call last)" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: cannot use the database")


@pytest.mark.parametrize("args", [["import", str(REPO)], ["db", "upgrade"]])
def test_a_mysql_url_is_refused_as_configuration(tmp_path, write_config, args):
    cfg = write_config(db_url="mysql://gradesync:pw@db.example/gradesync")
    proc = run_cli([*args, "--config", str(cfg)], _env(tmp_path), REPO, timeout=120)
    err = assert_one_line(proc, "database.url: unsupported database 'mysql'", "postgresql+psycopg://")
    assert "pw" not in err


def _config_with_one_course(tmp_path: Path, write_config) -> Path:
    cfg = write_config(db_url="sqlite:///gs.db")      # relative: beside the config file
    proc = run_cli(["db", "upgrade", "--config", str(cfg)], _env(tmp_path), REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(tmp_path / "gs.db") as db:    # the database is beside gradesync.toml, not in the cwd
        db.execute("INSERT INTO platform (name, vendor, issuer, client_id, updated_at) "
                   "VALUES ('canvas-test', 'canvas', 'https://canvas.test', 'c', '2026-01-01 00:00:00')")
        db.execute("INSERT INTO course (platform, context_id, title, lineitems_url, memberships_url) VALUES "
                   "('canvas-test', 'ctx-1', 'Biology', 'https://canvas.test/li', 'https://canvas.test/m')")
    return cfg


@pytest.mark.parametrize("args, needles", [
    (["--course", "9999999"], ["no imported course matches 9999999"]),
    (["--platform", "nosuch"], ["unknown platform 'nosuch'", "configured: canvas-test"]),
    (["--activity", "no-such-activity"], ["links activity no-such-activity"]),
])
def test_audit_filters_that_match_nothing_fail_before_prefect_starts(tmp_path, write_config, args, needles):
    cfg = _config_with_one_course(tmp_path, write_config)
    proc = run_cli(["audit", *args, "--config", str(cfg)], _env(tmp_path), REPO, timeout=180)
    assert_one_line(proc, *needles)
    assert not (tmp_path / "prefect-home").exists()            # Prefect never started
    with sqlite3.connect(tmp_path / "gs.db") as db:             # and no run was recorded: no "0 findings"
        assert db.execute("SELECT count(*) FROM audit_run").fetchone()[0] == 0
    assert "0 findings" not in proc.stdout and "digest" not in proc.stdout.lower()


def test_audit_with_nothing_imported_or_the_wrong_database_says_why(tmp_path, write_config):
    cfg = write_config(db_url="sqlite:///not-imported-here.db")
    proc = run_cli(["audit", "--config", str(cfg)], _env(tmp_path), REPO, timeout=180)
    assert_one_line(proc, "no course has been imported into", "did not exist before this command",
                    "relative to gradesync.toml's folder")
    assert (tmp_path / "not-imported-here.db").exists() and not (tmp_path / "prefect-home").exists()
    again = run_cli(["audit", "--config", str(cfg)], _env(tmp_path), REPO, timeout=180)
    assert_one_line(again, "no course has been imported", "run `gradesync import DIR` first")


def test_config_works_on_every_sub_command(tmp_path, write_config):
    cfg = _config_with_one_course(tmp_path, write_config)
    for args in (["platforms", "--config", str(cfg)], ["db", "upgrade", "--config", str(cfg)],
                 ["findings", "--config", str(cfg)], ["resync", "plan", "--config", str(cfg)]):
        proc = run_cli(args, _env(tmp_path), REPO, timeout=180)
        assert "No such option" not in proc.stderr, (args, proc.stderr)
        assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, (args, proc.stderr)
    missing = run_cli(["import", str(tmp_path), "--config", str(tmp_path / "other.toml")], _env(tmp_path), REPO)
    assert_one_line(missing, "config file not found", "other.toml")


def test_sandbox_serve_on_a_busy_port_is_one_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = run_cli(["sandbox", "serve", "--port", str(port), "--size", "tiny"], _env(tmp_path), REPO, timeout=120)
    assert_one_line(proc, "address already in use", "choose another --port")


@pytest.mark.slow
def test_lms_faults_are_one_line_per_course_and_the_report_names_people(tmp_path, prefect_env):
    """A platform answering 5xx to every service request: each of its courses is one "could not audit"
    line (no Prefect task traceback on the console), nothing from Great Expectations, exit 3; the report
    of that run names learners, courses and activities from the tool's records and reads well in Chromium."""
    import csv
    import subprocess
    import sys

    from pipeline.pipeline_helpers import serve_world

    env = {**prefect_env, "GRADESYNC_LOG_FILE": str(tmp_path / "gradesync.log"), "COLUMNS": "100"}
    with serve_world(tmp_path, 3, "tiny", f"sqlite:///{tmp_path / 'gs.db'}") as served:
        served.sandbox.control.set_faults("moodle-main", error_rate_5xx=1.0, seed=1)
        proc = run_cli(["audit", "--config", str(served.config), "--no-alerts"], env, REPO)
    assert proc.returncode == 3, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and "great_expectations" not in out.lower() and "Calculating Metrics" not in out
    moodle = [c for c in served.world.state.registrations["moodle-main"].courses]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("could not audit moodle-main/")]
    assert len(lines) == len(moodle), proc.stderr[-3000:]
    assert all(len(ln) <= 100 for ln in proc.stdout.splitlines()), "output wider than COLUMNS"
    kept = (tmp_path / "gradesync.log").read_text()            # why each course failed: kept, not shown
    assert all(f"moodle-main/{c}: read failed" in kept for c in moodle), kept[-2000:]

    report = Path(proc.stdout.split("Report: ", 1)[1].split()[0])
    html = report.read_text(encoding="utf-8")
    with (served.folder / "accounts.csv").open(encoding="utf-8") as fh:
        accounts = {r["account_id"]: r for r in csv.DictReader(fh)}
    with (served.folder / "courses.csv").open(encoding="utf-8") as fh:
        titles = {r["title"] for r in csv.DictReader(fh)}
    with (served.folder / "links.csv").open(encoding="utf-8") as fh:
        activities = {r["title"] for r in csv.DictReader(fh)}
    rows = list(csv.DictReader((report.parent / f"run-{report.stem.split('-')[1]}-findings.csv").open(encoding="utf-8")))
    learners = [r for r in rows if r["account_id"]]
    assert learners and all(r["learner_name"] == accounts[r["account_id"]]["name"] for r in learners)
    for r in learners:
        assert r["learner_email"] in html and r["learner_name"] in html
        assert r["course_title"] in titles and r["course_title"] in html
        assert r["activity_title"] in activities
        assert r["evidence_text"] and "{" not in r["evidence_text"]
    shot = tmp_path / "report.png"
    check = subprocess.run([sys.executable, str(REPO / "scripts" / "check_report_render.py"), str(report), str(shot)],
                           capture_output=True, text=True, timeout=300)
    if check.returncode != 3:                                  # 3: no Chromium on this machine
        assert check.returncode == 0, check.stderr
