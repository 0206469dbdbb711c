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


def _devtools():
    import importlib.util
    spec = importlib.util.spec_from_file_location("check_report_render", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed (apt-get install -y chromium)")
def test_filter_by_category_course_and_status_works_offline_and_print_says_it_is_filtered(tmp_path: Path):
    import tempfile

    s = summary()
    report = render_report(s, tmp_path)
    mod = _devtools()
    visible = "[...document.querySelectorAll('tr.finding')].filter(r => r.offsetParent).length"
    choose = ("(() => {{ const f = document.getElementById('filters'); f.elements['{0}'].value = '{1}';"
              " f.dispatchEvent(new Event('change')); return f.elements.shown.value; }})()")
    with tempfile.TemporaryDirectory() as profile:
        dt = mod.DevTools(CHROMIUM, profile)
        try:
            target = dt.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
            dt.session = dt.call("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)["sessionId"]
            dt.call("Page.enable")
            dt.call("Page.navigate", {"url": report.resolve().as_uri()})
            dt.wait_event("Page.loadEventFired")
            total = len(s.findings) + len(s.resolved)
            assert dt.evaluate(visible) == total
            said = dt.evaluate(choose.format("category", "not_learner"))
            assert dt.evaluate(visible) == 2 and said == f"filter: category not_learner (2 of {total} findings shown)"
            assert dt.evaluate("[...document.querySelectorAll('.group')].filter(g => !g.hidden).length") == 1
            dt.evaluate(choose.format("category", ""))
            said = dt.evaluate(choose.format("status", "resolved"))
            assert dt.evaluate(visible) == len(s.resolved) and "status resolved" in said
            dt.evaluate(choose.format("status", ""))
            dt.evaluate(choose.format("course", "canvas/course-1"))
            in_course = sum(1 for f in [*s.findings, *s.resolved] if f.context_id == "course-1")
            assert dt.evaluate(visible) == in_course
            dt.call("Emulation.setEmulatedMedia", {"media": "print"})
            # printed: the filtered rows only, and a line that says the printout is filtered
            assert dt.evaluate(visible) == in_course
            assert dt.evaluate("document.querySelector('.print-only').offsetParent !== null") is True
            dt.call("Emulation.setEmulatedMedia", {"media": "screen"})
            assert dt.evaluate("document.querySelector('.print-only').offsetParent") is None
        finally:
            dt.close()
