"""scripts/check_report_render.py: the report opened in real headless Chromium shows the chart."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradesync.report import render_report

from .factories import summary

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_report_render.py"
CHROMIUM = "/usr/bin/chromium"


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, **(env or {})})


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium_with_the_chart(tmp_path: Path):
    report = render_report(summary(), tmp_path)
    png = tmp_path / "report.png"
    done = _run(str(report), str(png), env={"CHROMIUM": CHROMIUM})
    assert done.returncode == 0, done.stderr
    assert "chart with 10 nights" in done.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed (apt-get install -y chromium)")
def test_render_check_fails_when_the_chart_is_missing(tmp_path: Path):
    page = tmp_path / "no-chart.html"
    page.write_text("<!DOCTYPE html><html><body><h1>no chart here</h1></body></html>", encoding="utf-8")
    done = _run(str(page), str(tmp_path / "x.png"), env={"CHROMIUM": CHROMIUM})
    assert done.returncode == 1 and 'no <svg id="history-chart">' in done.stderr


def test_render_check_exits_3_with_a_clear_message_without_chromium(tmp_path: Path):
    report = render_report(summary(), tmp_path)
    done = _run(str(report), str(tmp_path / "x.png"), env={"CHROMIUM": str(tmp_path / "no-such-chromium")})
    assert done.returncode == 3
    assert "chromium not found" in done.stderr and "apt-get install -y chromium" in done.stderr
