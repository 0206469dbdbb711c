from __future__ import annotations

import json
from pathlib import Path

from gradesync.report import render_report, render_validation_page

from .factories import summary


def _real_gx_results() -> list[dict]:
    """A tiny real GX 1.x validation (imported here only: ~7 s), returned as to_json_dict() like the audit."""
    import great_expectations as gx
    import pandas as pd
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = ctx.data_sources.add_pandas("t")
    results = pd.DataFrame({"row_id": range(5), "user_id": ["u1", None, "u3", "u4", "u5"],
                            "result_score": [1.0, 2.0, -3.0, 4.0, 5.0]})
    items = pd.DataFrame({"row_id": range(2), "label": ["Quiz 1", "Quiz 2"], "score_maximum": [10.0, 20.0]})
    suites = {
        "lms_results": (results, [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "user_id"}},
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "result_score", "min_value": 0}},
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}}]),
        "lms_line_items": (items, [
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "score_maximum",
                                                                      "min_value": 0, "strict_min": True}}]),
    }
    out = []
    for name, (df, expectations) in suites.items():
        suite = gx.ExpectationSuite(name=name, expectations=expectations)
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all").get_batch(
            batch_parameters={"dataframe": df})
        res = batch.validate(suite, result_format={"result_format": "COMPLETE",
                                                   "unexpected_index_column_names": ["row_id", "user_id"]
                                                   if name == "lms_results" else ["row_id"]})
        out.append(json.loads(json.dumps(res.to_json_dict(), default=str)))
    return out


def test_validation_page_from_a_real_gx_result_lists_suites_expectations_and_failing_rows(tmp_path: Path):
    results = _real_gx_results()
    assert results[0]["suite_name"] == "lms_results" and results[0]["success"] is False
    page = render_validation_page(results, tmp_path, 42)
    assert page == tmp_path / "run-42-validation.html"
    html = page.read_text(encoding="utf-8")
    assert '<a href="run-42.html">Back to the run report</a>' in html
    lms_results = html[html.index('<section id="suite-0"'):html.index('<section id="suite-1"')]
    assert "<code>lms_results</code> — <span class=\"badge bad\">failed</span>" in lms_results
    for t in ("expect_column_values_to_not_be_null", "expect_column_values_to_be_between",
              "expect_table_row_count_to_be_between"):
        assert f"<code>{t}</code>" in lms_results
    assert "column=result_score, min_value=0" in lms_results and "batch_id" not in lms_results
    # the failing row of the between expectation: value -3 for user u3 (the internal row id is not shown)
    assert "values: -3" in lms_results
    assert '<td class="mono">u3</td>' in lms_results and '<td class="mono">2</td><td class="mono">u3</td>' not in lms_results
    assert "<th>row_id</th>" not in lms_results
    assert "observed: 5" in lms_results                              # table row count
    suite_table = html[html.index('<section id="suites"'):html.index('<section id="suite-0"')]
    assert "<td class=\"num\">3</td><td class=\"num\">1</td>" in suite_table     # evaluated 3, successful 1
    assert "33.33 %" in suite_table
    items = html[html.index('<section id="suite-1"'):]
    assert "<code>lms_line_items</code> — <span class=\"badge ok\">passed</span>" in items

    report = render_report(summary(), tmp_path, validation_results=results).read_text(encoding="utf-8")
    assert '<a href="run-42-validation.html">' in report


def test_validation_page_handles_empty_suites_errors_and_escapes(tmp_path: Path):
    results = [
        {"suite_name": "lms_roster", "success": True, "statistics": {"evaluated_expectations": 0},
         "results": [], "meta": {"rows": 0}},
        {"suite_name": "<script>x</script>", "success": False,
         "statistics": {"evaluated_expectations": 1, "successful_expectations": 0, "unsuccessful_expectations": 1,
                        "success_percent": 0.0},
         "results": [{"success": False, "expectation_config": {"type": "expect_column_to_exist",
                                                               "kwargs": {"column": "<b>c</b>"}},
                      "result": {}, "exception_info": {"raised_exception": True,
                                                       "exception_message": "column <b>c</b> not found"}}]},
    ]
    html = render_validation_page(results, tmp_path, 7).read_text(encoding="utf-8")
    assert "No expectation was evaluated (the dataset was empty)." in html
    assert "<script" not in html and "<b>c</b>" not in html
    assert "column &lt;b&gt;c&lt;/b&gt; not found" in html


def test_report_links_to_an_existing_validation_page_and_says_when_there_is_none(tmp_path: Path):
    html = render_report(summary(), tmp_path).read_text(encoding="utf-8")
    assert "No validation results were recorded for this run." in html and "run-42-validation.html" not in html
    render_validation_page([], tmp_path, 42)
    html = render_report(summary(), tmp_path).read_text(encoding="utf-8")
    assert '<a href="run-42-validation.html">validation page</a>' in html


def test_validation_page_rounds_numbers_and_points_completion_gaps_to_the_findings(tmp_path: Path):
    results = [{"suite_name": "completion_sync", "success": False,
                "statistics": {"evaluated_expectations": 1, "successful_expectations": 0,
                               "unsuccessful_expectations": 1, "success_percent": 0.0},
                "results": [{"success": False,
                             "expectation_config": {"type": "expect_column_values_to_be_between",
                                                    "kwargs": {"column": "score_delta", "max_value": 0.005},
                                                    "meta": {"why": "normalised scores agree within 0.5 %"}},
                             "result": {"element_count": 3, "unexpected_count": 2,
                                        "unexpected_percent": 66.66666666666667,
                                        "partial_unexpected_list": [0.30000000000000004, 0.1234567891],
                                        "unexpected_index_list": [{"row_id": 0}, {"row_id": 2}]}}]}]
    html = render_validation_page(results, tmp_path, 9).read_text(encoding="utf-8")
    assert "values: 0.3, 0.1235" in html and "0.30000000000000004" not in html
    assert "66.67 %" in html and "normalised scores agree within 0.5 %" in html
    assert '<a href="run-9.html#findings">the run report</a>' in html
    assert "row_id" not in html
