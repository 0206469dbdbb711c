"""Write a run's HTML report (self-contained: inline CSS and SVG, no script, no CDN) and its findings CSV."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from gradesync.findings import Finding, RunSummary
from gradesync.report.chart import build_chart
from gradesync.report.env import environment, findings_csv_name, report_name, validation_page_name
from gradesync.report.validation import render_validation_page
from gradesync.report.view import build_view

ROWS_PER_CATEGORY = 200       # the page stays light at 10,000 findings; the CSV has them all

CSV_COLUMNS = ("category", "platform", "context_id", "resource_link_id", "activity_id", "line_item_id",
               "account_id", "lms_user_id", "tool_score", "tool_maximum", "lms_score", "lms_maximum",
               "action", "evidence", "identity", "new")


def _csv_cell(value: Any) -> Any:
    # Spreadsheet formula injection (OWASP "CSV Injection"): a text cell from LMS data that starts
    # with = + - @ would be evaluated by Excel/Sheets; a leading quote keeps it text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def write_findings_csv(summary: RunSummary, path: Path) -> Path:
    """Every finding of the run, one row each, in the JSON export's column names (+ identity, new)."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for f in summary.findings:
            w.writerow([_csv_cell(v) for v in _csv_values(f, summary.new)])
    return path


def _csv_values(f: Finding, new: set[str]) -> list[Any]:
    evidence = json.dumps(f.evidence, default=str, ensure_ascii=False, sort_keys=True)
    return [f.category, f.platform, f.context_id, f.resource_link_id, f.activity_id, f.line_item_id,
            f.account_id, f.lms_user_id, f.tool_score, f.tool_maximum, f.lms_score, f.lms_maximum,
            f.action, evidence, f.identity, "yes" if f.identity in new else ""]


def render_report(summary: RunSummary, out_dir: Path, *, validation_results: list[dict] | None = None,
                  rows_per_category: int = ROWS_PER_CATEGORY) -> Path:
    """Write out_dir/run-<id>.html (+ run-<id>-findings.csv, + the validation page when results are given)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = write_findings_csv(summary, out_dir / findings_csv_name(summary.run_id))
    validation_link = None
    if validation_results is not None:
        validation_link = render_validation_page(validation_results, out_dir, summary.run_id).name
    elif (out_dir / validation_page_name(summary.run_id)).exists():
        validation_link = validation_page_name(summary.run_id)
    history = list(summary.history)
    if not history:   # first run ever: the chart shows this run alone rather than nothing
        counts: dict[str, int] = {}
        for f in summary.findings:
            counts[f.category] = counts.get(f.category, 0) + 1
        history = [(summary.started_at.date().isoformat(), counts)]
    html = environment().get_template("report.html.j2").render(
        v=build_view(summary, row_cap=rows_per_category), chart=build_chart(history),
        csv_name=csv_path.name, validation_link=validation_link)
    path = out_dir / report_name(summary.run_id)
    path.write_text(html, encoding="utf-8")
    return path
