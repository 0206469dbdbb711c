"""Great Expectations over the run's frames: LMS data suites (warnings) and completion_sync (the gaps).

GX costs ~7 s to import (stack-notes B.4), so it is imported here, lazily, only when validation runs.
Suites are the JSON files in expectations/, loaded and counted: an unknown expectation type fails
loudly instead of being dropped (stack-notes B.1).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gradesync.diagnosis.expected import ExpectedGrade
from gradesync.diagnosis.inputs import CourseSnapshot
from gradesync.findings import DataQualityWarning

EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"
LMS_SUITES = ("lms_line_items", "lms_results", "lms_roster")
ROW_KEYS = {"lms_line_items": ["row_id", "platform", "context_id", "line_item_id"],
            "lms_results": ["row_id", "platform", "context_id", "line_item_id", "user_id"],
            "lms_roster": ["row_id", "platform", "context_id", "user_id"],
            "completion_sync": ["row_id"]}


class SuiteLoadError(Exception):
    """An expectations/*.json file that GX could not load completely."""


@dataclass
class ValidationOutcome:
    gaps: set[int]                                      # row ids of completion_sync's unexpected rows
    warnings: list[DataQualityWarning] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)   # GX result dicts, for the validation page


def completion_frame(rows: list[ExpectedGrade]) -> pd.DataFrame:
    """The expected-grade frame: one row per learner × graded activity (row_id = index in `rows`)."""
    tool = [g.tool_norm for g in rows]
    lms = [g.lms_norm for g in rows]
    delta = [None if b is None else abs(a - b) for a, b in zip(tool, lms)]
    return pd.DataFrame({
        "row_id": range(len(rows)),
        "tool_normalised": pd.Series(tool, dtype="float64"),
        "lms_normalised": pd.Series(lms, dtype="float64"),
        "score_delta": pd.Series(delta, dtype="float64"),
    })


def lms_frames(snapshots: dict[tuple[str, str], CourseSnapshot]) -> dict[str, pd.DataFrame]:
    """Line items, results and roster of every extracted course, as frames with identifying columns."""
    li: dict[str, list] = {k: [] for k in ("platform", "context_id", "line_item_id", "label", "score_maximum")}
    rs: dict[str, list] = {k: [] for k in ("platform", "context_id", "line_item_id", "user_id", "result_score", "result_maximum")}
    ro: dict[str, list] = {k: [] for k in ("platform", "context_id", "user_id", "roles", "status")}
    for (platform, ctx), snap in snapshots.items():
        if snap.error is not None:
            continue
        for item in snap.line_items:
            for k, v in (("platform", platform), ("context_id", ctx), ("line_item_id", item.id),
                         ("label", item.label), ("score_maximum", item.score_maximum)):
                li[k].append(v)
        for item_id, results in snap.results.items():
            for r in results:
                for k, v in (("platform", platform), ("context_id", ctx), ("line_item_id", item_id),
                             ("user_id", r.user_id), ("result_score", r.result_score),
                             ("result_maximum", r.result_maximum)):
                    rs[k].append(v)
        for m in snap.members:
            for k, v in (("platform", platform), ("context_id", ctx), ("user_id", m.user_id),
                         ("roles", " ".join(m.roles) if m.roles else None), ("status", m.status)):
                ro[k].append(v)
    frames = {"lms_line_items": pd.DataFrame(li), "lms_results": pd.DataFrame(rs), "lms_roster": pd.DataFrame(ro)}
    for df in frames.values():
        df.insert(0, "row_id", range(len(df)))
    for col in ("score_maximum",):
        frames["lms_line_items"][col] = pd.to_numeric(frames["lms_line_items"][col], errors="coerce")
    for col in ("result_score", "result_maximum"):
        frames["lms_results"][col] = pd.to_numeric(frames["lms_results"][col], errors="coerce")
    return frames


def load_suite(gx, name: str, folder: Path = EXPECTATIONS_DIR):
    """Load expectations/<name>.json into a GX suite; raise if any expectation was dropped."""
    path = folder / f"{name}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    suite = gx.ExpectationSuite(name=data["name"], expectations=data["expectations"], meta=data.get("meta") or {})
    if len(suite.expectations) != len(data["expectations"]):
        raise SuiteLoadError(f"{path}: {len(data['expectations']) - len(suite.expectations)} expectation(s) "
                             "were not understood by Great Expectations (unknown type?)")
    return suite


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            v = v.item()          # numpy scalars
        except (ValueError, AttributeError):
            pass
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def validate_run(rows: list[ExpectedGrade], snapshots: dict[tuple[str, str], CourseSnapshot]) -> ValidationOutcome:
    """Run the four suites; return completion_sync's gaps (row ids) and the LMS data warnings."""
    import logging

    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX announces its temporary Data Docs folder at INFO on every context; our own page replaces it.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = ctx.data_sources.add_pandas("gradesync")
    frames = lms_frames(snapshots)
    frames["completion_sync"] = completion_frame(rows)
    outcome = ValidationOutcome(gaps=set())
    for name in (*LMS_SUITES, "completion_sync"):
        df = frames[name]
        suite = load_suite(gx, name)
        if df.empty:
            outcome.results.append({"suite_name": name, "success": True, "statistics": {"evaluated_expectations": 0},
                                    "results": [], "meta": {"rows": 0}})
            continue
        batch_def = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
        batch = batch_def.get_batch(batch_parameters={"dataframe": df})
        result = batch.validate(suite, result_format={
            "result_format": "COMPLETE", "unexpected_index_column_names": ROW_KEYS[name],
            "partial_unexpected_count": 20})
        as_dict = _jsonable(result.to_json_dict())
        as_dict.setdefault("meta", {})["rows"] = len(df)
        outcome.results.append(as_dict)
        for r in result.results:
            if r.success:
                continue
            index_rows = r.result.get("unexpected_index_list") or []
            if name == "completion_sync":
                outcome.gaps.update(int(x["row_id"]) for x in index_rows)
                continue
            outcome.warnings += _warnings(name, r.expectation_config, index_rows, df)
    return outcome


def _warnings(suite: str, config, index_rows: list[dict], df: pd.DataFrame) -> list[DataQualityWarning]:
    by_course: dict[tuple[str, str], list[dict]] = {}
    ids = [int(x["row_id"]) for x in index_rows if "row_id" in x]
    if ids:
        sub = df.iloc[ids]
        for rec in sub.to_dict("records"):
            by_course.setdefault((rec["platform"], rec["context_id"]), []).append(_jsonable(rec))
    else:   # compound uniqueness may come without index rows: report run-wide
        by_course[("*", "*")] = []
    expectation = f"{config.type}({', '.join(f'{k}={v}' for k, v in config.kwargs.items() if k not in ('batch_id',))})"
    return [DataQualityWarning(suite, expectation, p, c, len(recs) or 1, recs[:5]) for (p, c), recs in by_course.items()]


def gaps_by_course(rows: list[ExpectedGrade], gap_ids: set[int]) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """Group completion_sync's unexpected rows as (line_item_id, lms_user_id) per course."""
    out: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for i in gap_ids:
        g = rows[i]
        out.setdefault((g.platform, g.context_id), set()).add((g.line_item_id, g.lms_user_id))
    return out


TRIM_ROWS = 50     # unexpected rows kept per expectation per batch (the validation page shows 20)


def trim_results(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A batch's GX result dicts with each expectation's unexpected lists cut to TRIM_ROWS (stored with
    the batch: bounded, whatever the batch's size)."""
    out = []
    for d in results:
        d = dict(d)
        d["results"] = [_trim_one(r) for r in d.get("results") or []]
        out.append(d)
    return out


def _trim_one(r: dict[str, Any]) -> dict[str, Any]:
    r = dict(r)
    res = dict(r.get("result") or {})
    for k in ("unexpected_index_list", "partial_unexpected_list", "unexpected_list",
              "partial_unexpected_index_list", "partial_unexpected_counts"):
        if isinstance(res.get(k), list):
            res[k] = res[k][:TRIM_ROWS]
    res.pop("unexpected_index_query", None)
    r["result"] = res
    return r


def merge_results(batches: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The run's validation results: each suite's results over all batches as one suite result
    (counts added up, samples concatenated, success only when every batch succeeded)."""
    merged: dict[str, dict[str, Any]] = {}
    for results in batches:
        for d in results:
            name = d.get("suite_name") or "?"
            cur = merged.get(name)
            if cur is None:
                merged[name] = _copy_suite(d)
                continue
            cur["success"] = bool(cur.get("success")) and bool(d.get("success"))
            cur.setdefault("meta", {})["rows"] = (cur["meta"].get("rows") or 0) + ((d.get("meta") or {}).get("rows") or 0)
            by_key = {_expectation_key(r): r for r in cur["results"]}
            for r in d.get("results") or []:
                mine = by_key.get(_expectation_key(r))
                if mine is None:
                    cur["results"].append(_trim_one(r))
                    by_key[_expectation_key(r)] = cur["results"][-1]
                else:
                    _add_result(mine, r)
            cur["statistics"] = _statistics(cur["results"])
    return list(merged.values())


def _copy_suite(d: dict[str, Any]) -> dict[str, Any]:
    out = dict(d)
    out["results"] = [_trim_one(r) for r in d.get("results") or []]
    out["meta"] = dict(d.get("meta") or {})
    return out


def _expectation_key(r: dict[str, Any]) -> str:
    cfg = r.get("expectation_config") or {}
    kwargs = {k: v for k, v in (cfg.get("kwargs") or {}).items() if k != "batch_id"}
    return json.dumps([cfg.get("type"), kwargs], sort_keys=True, default=str)


def _add_result(mine: dict[str, Any], other: dict[str, Any]) -> None:
    mine["success"] = bool(mine.get("success")) and bool(other.get("success"))
    a, b = mine.setdefault("result", {}), other.get("result") or {}
    for k in ("element_count", "unexpected_count", "missing_count"):
        if isinstance(a.get(k), (int, float)) or isinstance(b.get(k), (int, float)):
            a[k] = (a.get(k) or 0) + (b.get(k) or 0)
    if a.get("element_count"):
        a["unexpected_percent"] = 100.0 * (a.get("unexpected_count") or 0) / a["element_count"]
    for k in ("unexpected_index_list", "partial_unexpected_list"):
        if isinstance(b.get(k), list):
            a[k] = ((a.get(k) or []) + b[k])[:TRIM_ROWS]
    if a.get("observed_value") is None and b.get("observed_value") is not None:
        a["observed_value"] = b["observed_value"]
    if (other.get("exception_info") or {}).get("raised_exception"):
        mine["exception_info"] = other["exception_info"]


def _statistics(results: list[dict[str, Any]]) -> dict[str, Any]:
    ok = sum(1 for r in results if r.get("success"))
    n = len(results)
    return {"evaluated_expectations": n, "successful_expectations": ok, "unsuccessful_expectations": n - ok,
            "success_percent": 100.0 * ok / n if n else 100.0}
