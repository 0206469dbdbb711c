"""Write a run's HTML report (self-contained: inline CSS, SVG and one small filter script; no CDN, works
offline) and its findings CSV."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from datetime import datetime, timezone

from gradesync.findings import Finding, RunSummary
from gradesync.report.chart import build_chart
from gradesync.report.env import environment, findings_csv_name, report_name, validation_page_name
from gradesync.report.people import Directory, directory_from_summary, load_directory
from gradesync.report.validation import render_validation_page
from gradesync.report.view import build_view, finding_evidence

ROWS_PER_CATEGORY = 200       # the page stays light at 10,000 findings; the CSV has them all

CSV_COLUMNS = ("category", "platform", "context_id", "resource_link_id", "activity_id", "line_item_id",
               "account_id", "lms_user_id", "tool_score", "tool_maximum", "lms_score", "lms_maximum",
               "action", "evidence", "identity", "new",
               # for people (issue 14): names and titles from the tool's records, evidence in words
               "status", "learner_name", "learner_email", "course_title", "activity_title", "evidence_text")


_FORMULA_STARTS = frozenset("=+-@\t\r")


def _csv_cell(value: Any) -> Any:
    # Spreadsheet formula injection (OWASP "CSV Injection"): a text cell from LMS data that starts
    # with = + - @ would be evaluated by Excel/Sheets; a leading quote keeps it text.
    if value.__class__ is str and value and value[0] in _FORMULA_STARTS:
        return "'" + value
    return value


def write_findings_csv(summary: RunSummary, path: Path, people: Directory | None = None) -> Path:
    """Every finding of the run (then the resolved ones), one row each: the JSON export's column names
    (+ identity, new), then status, names, titles and the evidence in words."""
    people = people or directory_from_summary(summary)
    rows = [(f, "new" if f.identity in summary.new else "open") for f in summary.findings]
    rows += [(f, "resolved") for f in summary.resolved]
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for f, status in rows:
            w.writerow([_csv_cell(v) for v in _csv_values(f, status, people, summary.finished_at)])
    return path


def _csv_values(f: Finding, status: str, people: Directory, today: datetime | None) -> list[Any]:
    evidence = json.dumps(f.evidence, default=str, ensure_ascii=False, sort_keys=True)
    person = people.learner(f) if f.level == "learner" else None
    return [f.category, f.platform, f.context_id, f.resource_link_id, f.activity_id, f.line_item_id,
            f.account_id, f.lms_user_id, f.tool_score, f.tool_maximum, f.lms_score, f.lms_maximum,
            f.action, evidence, f.identity, "yes" if status == "new" else "",
            status, person.name if person else "", person.email if person else "",
            people.course_title(f.platform, f.context_id) or "", people.activity_title(f) or "", finding_evidence(f, people, today).words]


def render_report(summary: RunSummary, out_dir: Path, *, validation_results: list[dict] | None = None,
                  rows_per_category: int = ROWS_PER_CATEGORY, database_url: str | None = None,
                  people: Directory | None = None) -> Path:
    """Write out_dir/run-<id>.html (+ run-<id>-findings.csv, + the validation page when results are given).
    With `database_url`, learners' names and emails, course and activity titles come from the database."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if summary.finished_at is None:
        # The flow renders the report as its last step, just before it stamps the run finished: the
        # report is the run's end (without this, Duration and Finished read "—" on every report).
        now = datetime.now(timezone.utc)
        summary.finished_at = now if summary.started_at.tzinfo else now.replace(tzinfo=None)
    if people is None:
        people = load_directory(database_url, summary) if database_url else directory_from_summary(summary)
    csv_path = write_findings_csv(summary, out_dir / findings_csv_name(summary.run_id), people)
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
        v=build_view(summary, row_cap=rows_per_category, people=people), chart=build_chart(history),
        csv_name=csv_path.name, validation_link=validation_link)
    path = out_dir / report_name(summary.run_id)
    path.write_text(html, encoding="utf-8")
    return path
