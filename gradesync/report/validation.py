"""An offline equivalent of GX Data Docs: one page per run from the validation results' JSON dicts.

GX's own Data Docs load CSS/JS from CDNs (stack-notes B.3), so offline readers would get an unstyled
page; this one is plain HTML + inline CSS. Input: `ExpectationSuiteValidationResult.to_json_dict()`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gradesync.report.env import environment, report_name, validation_page_name

SAMPLE_ROWS = 20              # unexpected values / index rows shown per expectation
HIDDEN_KWARGS = {"batch_id"}  # GX adds the batch id to every kwargs; it says nothing to a reader
# Internal row numbers of gradesync's frames: nothing a person can look up, so never shown.
HIDDEN_INDEX_COLUMNS = {"row_id"}
SIGNIFICANT = 4               # digits shown of a float (0.7000000000000001 → 0.7)


@dataclass(frozen=True)
class ExpectationLine:
    type: str
    kwargs: str
    success: bool | None
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: str
    observed_value: str | None
    sample_values: tuple[str, ...]
    index_columns: tuple[str, ...]
    index_rows: tuple[tuple[str, ...], ...]
    error: str | None
    why: str | None = None                   # the suite's own words for the expectation (meta.why)
    rows_are_findings: bool = False          # completion_sync: its failing rows are the run's findings


@dataclass(frozen=True)
class SuiteSection:
    anchor: str
    name: str
    success: bool | None
    evaluated: int
    successful: int
    unsuccessful: int
    success_percent: str
    rows: int | None
    expectations: tuple[ExpectationLine, ...]


def _rounded(v: Any) -> Any:
    if isinstance(v, float):
        return float(f"{v:.{SIGNIFICANT}g}")
    if isinstance(v, dict):
        return {k: _rounded(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_rounded(x) for x in v]
    return v


def _text(v: Any) -> str:
    v = _rounded(v)
    if isinstance(v, float):
        return f"{v:g}"
    return v if isinstance(v, str) else json.dumps(v, default=str, ensure_ascii=False, sort_keys=True)


def _percent(v: Any) -> str:
    return f"{float(v):.2f} %" if isinstance(v, (int, float)) else "—"


def expectation_line(r: dict[str, Any]) -> ExpectationLine:
    """One row of the page from one entry of `results` (expectation_config + result + exception_info)."""
    cfg = r.get("expectation_config") or {}
    res = r.get("result") or {}
    kwargs = {k: v for k, v in (cfg.get("kwargs") or {}).items() if k not in HIDDEN_KWARGS}
    index = [x for x in (res.get("unexpected_index_list") or [])[:SAMPLE_ROWS]]
    if index and all(isinstance(x, dict) for x in index):
        columns = tuple(k for k in dict.fromkeys(k for x in index for k in x) if k not in HIDDEN_INDEX_COLUMNS)
        rows = tuple(tuple(_text(x.get(c)) for c in columns) for x in index) if columns else ()
    else:   # plain row numbers (no index columns were asked for): nothing a person can look up
        columns, rows = (), ()
    rows_are_findings = bool(index) and not columns
    exc = r.get("exception_info") or {}
    error = exc.get("exception_message") if exc.get("raised_exception") else None
    observed = res.get("observed_value")
    return ExpectationLine(
        type=str(cfg.get("type") or cfg.get("expectation_type") or "?"),
        kwargs=", ".join(f"{k}={_text(v)}" for k, v in kwargs.items()),
        success=r.get("success"), element_count=res.get("element_count"),
        unexpected_count=res.get("unexpected_count"), unexpected_percent=_percent(res.get("unexpected_percent")),
        observed_value=None if observed is None else _text(observed),
        sample_values=tuple(_text(x) for x in (res.get("partial_unexpected_list") or [])[:SAMPLE_ROWS]),
        index_columns=columns, index_rows=rows, error=error,
        why=(cfg.get("meta") or {}).get("why"), rows_are_findings=rows_are_findings)


def suite_section(i: int, d: dict[str, Any]) -> SuiteSection:
    stats = d.get("statistics") or {}
    results = d.get("results") or []
    name = str(d.get("suite_name") or (d.get("meta") or {}).get("expectation_suite_name") or f"suite {i + 1}")
    lines = tuple(expectation_line(r) for r in results)
    evaluated = int(stats.get("evaluated_expectations", len(lines)) or 0)
    successful = int(stats.get("successful_expectations", sum(1 for x in lines if x.success)) or 0)
    return SuiteSection(
        anchor=f"suite-{i}", name=name, success=d.get("success"), evaluated=evaluated, successful=successful,
        unsuccessful=int(stats.get("unsuccessful_expectations", evaluated - successful) or 0),
        success_percent=_percent(stats.get("success_percent")), rows=(d.get("meta") or {}).get("rows"),
        # Failures first: they are what a reader opens this page for.
        expectations=tuple(sorted(lines, key=lambda x: x.success is not False)))


def render_validation_page(validation_results: list[dict], out_dir: Path, run_id: int) -> Path:
    """Write out_dir/run-<id>-validation.html: each suite's result and each expectation's failing rows."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    suites = [suite_section(i, d) for i, d in enumerate(validation_results)]
    html = environment().get_template("validation.html.j2").render(
        run_id=run_id, suites=suites, report_link=report_name(run_id),
        failed=sum(1 for s in suites if s.success is False), sample_rows=SAMPLE_ROWS)
    path = out_dir / validation_page_name(run_id)
    path.write_text(html, encoding="utf-8")
    return path
