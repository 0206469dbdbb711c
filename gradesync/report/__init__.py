"""Per-run HTML report (summary, history chart, findings) and the offline validation-results page."""
from gradesync.report.render import render_report, write_findings_csv
from gradesync.report.validation import render_validation_page

__all__ = ["render_report", "render_validation_page", "write_findings_csv"]
