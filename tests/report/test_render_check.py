"""scripts/check_report_render.py: the report opened in real headless Chromium shows the chart."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dataclasses import replace

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
def test_every_finding_score_and_action_is_readable_at_1280_and_1920_px_and_printed(tmp_path: Path):
    s = summary()
    # The squeeze of issue 14: long line-item URLs and ids must not push scores or actions off the page.
    long_url = "https://canvas.example.edu/api/lti/courses/123456789/line_items/" + "9" * 120 + "?include=results"
    s.findings = [replace(f, line_item_id=long_url, activity_id="activity-" + "x" * 80) for f in s.findings]
    report = render_report(s, tmp_path)
    png = tmp_path / "report.png"
    done = _run(str(report), str(png), env={"CHROMIUM": CHROMIUM})
    assert done.returncode == 0, done.stderr
    assert f"{len(s.findings) + len(s.resolved)} finding rows readable at 1280 and 1920 px and printed" in done.stdout
    assert (tmp_path / "report-1920.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "report.pdf").read_bytes()[:4] == b"%PDF"


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed (apt-get install -y chromium)")
def test_render_check_fails_on_a_page_that_overflows_on_screen(tmp_path: Path):
    html = render_report(summary(), tmp_path).read_text(encoding="utf-8")
    # A table whose columns cannot shrink: the action cell ends far right of a 1280 px viewport.
    wide = html.replace("<table class=\"findings\">", "<table class=\"findings\" style=\"width: 2400px\">", 1)
    page = tmp_path / "wide.html"
    page.write_text(wide, encoding="utf-8")
    done = _run(str(page), str(tmp_path / "x.png"), env={"CHROMIUM": CHROMIUM})
    assert done.returncode == 1
    assert "1280 px: page overflows horizontally" in done.stderr and "outside 1280 px" in done.stderr


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed (apt-get install -y chromium)")
def test_render_check_fails_when_a_column_is_cut_in_print_only(tmp_path: Path):
    html = render_report(summary(), tmp_path).read_text(encoding="utf-8")
    # Fine on screen; in print the findings tables get wider than an A4 landscape page.
    cut = html.replace("</style>", "@media print { table.findings { width: 1600px; } }\n</style>", 1)
    page = tmp_path / "cut.html"
    page.write_text(cut, encoding="utf-8")
    done = _run(str(page), str(tmp_path / "x.png"), env={"CHROMIUM": CHROMIUM})
    assert done.returncode == 1
    assert "print (" in done.stderr and "1280 px:" not in done.stderr


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
