"""The Jinja2 environment and the file names of a run's report files (shared by both pages)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined


@lru_cache(maxsize=1)
def environment() -> Environment:
    """Jinja2 over the package's templates, autoescaping everything (labels come from LMS data).
    One per process: templates are compiled once, not on every report."""
    return Environment(loader=PackageLoader("gradesync.report", "templates"), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def report_name(run_id: int) -> str:
    return f"run-{run_id}.html"


def report_path(report_dir: str | Path, run_id: int) -> Path:
    """Where render_report writes the run's page (known before rendering, so alerts can link to it)."""
    return Path(report_dir) / report_name(run_id)


def findings_csv_name(run_id: int) -> str:
    return f"run-{run_id}-findings.csv"


def validation_page_name(run_id: int) -> str:
    return f"run-{run_id}-validation.html"
