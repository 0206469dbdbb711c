"""`gradesync sandbox export` and `gradesync sandbox serve`, through their real entry points."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from gradesync.settings import load_settings
from sandbox_lms.cli import app

REPO = Path(__file__).resolve().parents[2]


def test_export_command_writes_a_ready_folder(tmp_path):
    result = CliRunner().invoke(app, ["export", "--world", "3", "--size", "tiny",
                                      "--base-url", "http://127.0.0.1:8123", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    assert "planted" in result.output
    settings = load_settings(tmp_path / "w" / "gradesync.toml")
    assert all(p.token_url.startswith("http://127.0.0.1:8123/") for p in settings.platforms)
    assert (tmp_path / "w" / "passbacks.csv").stat().st_size > 0


def test_export_command_refuses_an_unknown_size(tmp_path):
    result = CliRunner().invoke(app, ["export", "--world", "3", "--size", "huge", str(tmp_path)])
    assert result.exit_code != 0
    assert not (tmp_path / "gradesync.toml").exists()


def test_serve_command_serves_and_exports_for_its_real_port(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "sandbox_lms.cli", "serve", "--port", "0", "--size", "tiny",
                             "--world", "4", "--profile", "moodle", "--export", str(tmp_path)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        out = "".join(lines)
        assert "Sandbox LMS at http://127.0.0.1:" in out, out
        base = out.split("Sandbox LMS at ", 1)[1].split()[0]
        settings = load_settings(tmp_path / "gradesync.toml")
        assert [p.name for p in settings.platforms] == ["moodle-main", "moodle-noscore"]
        assert all(p.token_url.startswith(base + "/") for p in settings.platforms)
        # the server answers: a GET on a token endpoint is refused (POST only), but answered
        assert httpx.get(settings.platforms[0].token_url).status_code in (400, 405)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
