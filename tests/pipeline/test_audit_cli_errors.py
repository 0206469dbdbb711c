"""`gradesync audit` / `findings` that cannot run: one line on stderr, exit code 1, no traceback."""
from __future__ import annotations

import os

from pipeline.pipeline_helpers import REPO, run_cli


def test_audit_with_a_missing_config_exits_1(tmp_path):
    proc = run_cli(["audit", "--config", str(tmp_path / "nope.toml")], dict(os.environ), REPO, timeout=60)
    assert proc.returncode == 1 and "config file not found" in proc.stderr and "Traceback" not in proc.stderr


def test_audit_and_findings_with_an_unreachable_database_exit_1(tmp_path, write_config):
    config = write_config()
    env = {**os.environ, "GRADESYNC_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:9/none"}
    for args in (["audit", "--config", str(config)], ["findings", "--config", str(config)]):
        proc = run_cli(args, env, REPO, timeout=120)
        assert proc.returncode == 1, proc.stderr
        assert "OperationalError" in proc.stderr and "Traceback" not in proc.stderr
