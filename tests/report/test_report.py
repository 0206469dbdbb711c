from __future__ import annotations

import csv
import time
from datetime import datetime, timedelta, timezone
from dataclasses import replace
from pathlib import Path

from gradesync.findings import CATEGORIES, CourseStatus, Finding
from gradesync.report import render_report
from gradesync.report.categories import MEANINGS

from .factories import finding, history, summary
from .htmlscan import read_chart, section


def test_report_file_is_written_with_every_category_and_its_meaning(tmp_path: Path):
    path = render_report(summary(), tmp_path)
    assert path == tmp_path / "run-42.html" and path.is_file()
    html = path.read_text(encoding="utf-8")
    cats = section(html, "categories")
    for c in CATEGORIES:
        assert f"<code>{c}</code>" in cats
        assert MEANINGS[c] in cats
        assert f'id="cat-{c}"' in html            # a findings group per category
    # design order: the summary rows follow CATEGORIES
    positions = [cats.index(f"<code>{c}</code>") for c in CATEGORIES]
    assert positions == sorted(positions)
    assert "gradesync audit run 42" in html and "partial" in html and "3m 07s" in html


def test_chart_has_one_bar_group_per_night_with_the_right_totals(tmp_path: Path):
    s = summary()
    html = render_report(s, tmp_path).read_text(encoding="utf-8")
    chart = read_chart(html)
    assert [n["night"] for n in chart.nights] == [night for night, _ in history()]
    for n, (_, counts) in zip(chart.nights, history()):
        assert n["total"] == sum(counts.values())
        assert sum(b["count"] for b in n["bars"]) == n["total"]
        assert {b["category"]: b["count"] for b in n["bars"]} == {k: v for k, v in counts.items() if v}
    # Heights are proportional to counts, and stacks are drawn in design order from the bottom up.
    per_unit = {round(b["height"] / b["count"], 3) for n in chart.nights for b in n["bars"]}
    assert len(per_unit) == 1
    last = chart.nights[-1]["bars"]
    assert [b["category"] for b in last] == [c for c in CATEGORIES if c in {b["category"] for b in last}]
    assert all(a["y"] > b["y"] for a, b in zip(last, last[1:]))
    assert chart.legend == list(CATEGORIES)


def test_unverified_courses_are_listed_under_could_not_audit(tmp_path: Path):
    html = render_report(summary(), tmp_path).read_text(encoding="utf-8")
    block = section(html, "unverified")
    assert "Could not audit: 2 courses" in block
    assert "HTTP 503 from line items after 3 retries" in block and "token endpoint unavailable" in block
    assert "course-0" not in block


def test_everything_from_data_is_escaped(tmp_path: Path):
    evil = "<script>alert('x')</script>"
    s = summary()
    s.courses.append(CourseStatus("canvas", "evil-ctx", "unverified", reason=evil, title=evil))
    s.findings.append(replace(finding("missing_in_lms", 77, context_id="evil-ctx"), action=evil,
                              account_id='"><img src=x onerror=alert(1)>', evidence={"label": evil}))
    s.alert_failures.append(evil)
    html = render_report(s, tmp_path).read_text(encoding="utf-8")
    assert html.lower().count("<script") == 1          # the report's own inline filter, nothing from data
    assert "<img" not in html.lower()
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert read_chart(html).scripts == 0 and read_chart(html).inline_scripts == 1


def test_report_is_self_contained(tmp_path: Path):
    html = render_report(summary(), tmp_path).read_text(encoding="utf-8")
    scan = read_chart(html)
    assert scan.scripts == 0 and scan.external == [] and scan.inline_scripts == 1   # works offline
    assert "<style>" in html and "@import" not in html and "url(" not in html


def test_request_accounting_reads_stats_objects_and_dicts(tmp_path: Path):
    block = section(render_report(summary(), tmp_path).read_text(encoding="utf-8"), "requests")
    assert "canvas" in block and "moodle" in block
    assert "<td class=\"num\">48</td>" in block      # canvas total 2 + 6 + 40
    assert "2.5 s" in block


def test_new_findings_are_marked_and_resolved_ones_listed(tmp_path: Path):
    s = summary()
    html = render_report(s, tmp_path).read_text(encoding="utf-8")
    missing = html[html.index('id="cat-missing_in_lms"'):]
    missing = missing[: missing.index("</table>")]
    assert missing.count('class="badge new"') == 2
    score = html[html.index('id="cat-score_mismatch"'):]
    assert 'class="badge new"' not in score[: score.index("</table>")]
    resolved = section(html, "resolved")
    assert "Resolved since last run (2)" in resolved and "rl-900" in resolved and "rl-901" in resolved


def test_first_run_without_history_charts_this_run_alone(tmp_path: Path):
    s = summary()
    s.history = []
    chart = read_chart(render_report(s, tmp_path).read_text(encoding="utf-8"))
    assert len(chart.nights) == 1 and chart.nights[0]["total"] == len(s.findings)
    assert chart.nights[0]["night"] == s.started_at.date().isoformat()


def test_clean_run_says_so(tmp_path: Path):
    s = summary()
    s.findings, s.new, s.resolved, s.dq_warnings, s.alert_failures = [], set(), [], [], []
    s.courses = [c for c in s.courses if c.status == "audited"]
    html = render_report(s, tmp_path).read_text(encoding="utf-8")
    assert "Every course in scope was audited." in html
    assert "No findings: every expected grade reached the LMS." in html
    assert "No alert delivery failed." in html


def test_ten_thousand_findings_render_fast_capped_per_category_with_full_csv(tmp_path: Path):
    s = summary()
    s.findings = [finding(CATEGORIES[i % len(CATEGORIES)], i, context_id=f"course-{i % 50}") for i in range(10_000)]
    s.new = {f.identity for f in s.findings[::3]}
    t0 = time.perf_counter()
    path = render_report(s, tmp_path, rows_per_category=200)
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0, f"10,000 findings took {elapsed:.2f} s"
    html = path.read_text(encoding="utf-8")
    findings_block = section(html, "findings")
    assert findings_block.count('<tr class="finding"') == 200 * len(CATEGORIES)
    n_missing = sum(1 for f in s.findings if f.category == "missing_in_lms")      # 909
    assert f"200 of {n_missing} shown; {n_missing - 200} more <code>missing_in_lms</code>" in findings_block
    with (tmp_path / "run-42-findings.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 10_000 + len(s.resolved)          # the resolved ones follow, status "resolved"
    assert [r["status"] for r in rows[10_000:]] == ["resolved"] * len(s.resolved)
    assert sum(1 for r in rows if r["new"] == "yes") == sum(1 for f in s.findings if f.identity in s.new)
    assert rows[0]["category"] == CATEGORIES[0] and rows[0]["identity"] == s.findings[0].identity
    assert len(html) < 3_000_000


def test_csv_neutralises_spreadsheet_formulas(tmp_path: Path):
    s = summary()
    s.findings = [Finding("missing_in_lms", "canvas", "c1", action="=HYPERLINK(\"http://x\")",
                          lms_user_id="@SUM(A1)", tool_score=-1.0, evidence={"a": 1})]
    render_report(s, tmp_path)
    with (tmp_path / "run-42-findings.csv").open(encoding="utf-8", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert row["action"].startswith("'=") and row["lms_user_id"] == "'@SUM(A1)"
    assert row["tool_score"] == "-1.0"                 # numbers are left alone
    assert row["evidence"] == '{"a": 1}'


def test_long_history_keeps_one_group_per_night_including_empty_nights(tmp_path: Path):
    s = summary()
    s.history = [(f"2025-01-{d:02d}" if d <= 31 else f"2025-02-{d - 31:02d}", {"missing_in_lms": d % 4})
                 for d in range(1, 60)]
    chart = read_chart(render_report(s, tmp_path).read_text(encoding="utf-8"))
    assert len(chart.nights) == 59
    assert [n["total"] for n in chart.nights] == [d % 4 for d in range(1, 60)]
    assert all(n["bars"] == [] for n in chart.nights if n["total"] == 0)


def test_axis_maximum_is_a_round_number_above_the_tallest_bar():
    from gradesync.report.chart import nice_max
    assert nice_max(0) == (1, 1)
    assert nice_max(19) == (20, 5)
    for v in (1, 3, 7, 19, 105, 999, 10_000):
        top, step = nice_max(v)
        assert top >= v and top % step == 0 and top / step <= 10


def test_duration_and_finished_are_filled_when_the_report_is_the_runs_last_step(tmp_path: Path):
    # The flow renders the report before it stamps the run finished (flows/audit.py): finished_at is None
    # then, and every report used to read "—" for Duration and Finished.
    s = summary()
    s.started_at = datetime.now(timezone.utc) - timedelta(minutes=2, seconds=5)
    s.finished_at = None
    html = render_report(s, tmp_path).read_text(encoding="utf-8")
    meta = html[html.index('<dl class="meta">'):html.index("</dl>")]
    assert "<dt>Duration</dt><dd>2m 0" in meta and "<dt>Finished</dt><dd>—" not in meta
    assert s.finished_at is not None
