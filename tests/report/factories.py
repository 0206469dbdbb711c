"""Synthetic run summaries for the report tests: every category, ten nights of history, unverified courses."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from gradesync.findings import CATEGORIES, CourseStatus, DataQualityWarning, Finding, RunSummary, level_of
from lti_client.types import RequestStats

START = datetime(2025, 3, 14, 2, 0, tzinfo=timezone.utc)


def finding(category: str, i: int, *, platform: str = "canvas", context_id: str = "course-1") -> Finding:
    lvl = level_of(category)
    return Finding(
        category=category, platform=platform, context_id=context_id, action=f"do something about {category}",
        resource_link_id=None if lvl == "course" else f"rl-{i}", activity_id=None if lvl == "course" else f"act-{i}",
        line_item_id=None if lvl == "course" else f"https://lms.example/li/{i}",
        account_id=f"acct-{i}" if lvl == "learner" else None, lms_user_id=f"user-{i}" if lvl == "learner" else None,
        tool_score=8.0 if lvl == "learner" else None, tool_maximum=10.0 if lvl == "learner" else None,
        lms_score=6.0 if category == "score_mismatch" else None, lms_maximum=10.0 if category == "score_mismatch" else None,
        evidence={"rule": category, "i": i})


def history(nights: int = 10) -> list[tuple[str, dict[str, int]]]:
    """Night k has k+1 findings of missing_in_lms and k findings of score_mismatch, plus one course finding
    on even nights: totals are 2k+1 (+1 when k is even)."""
    out = []
    for k in range(nights):
        counts = {"missing_in_lms": k + 1, "score_mismatch": k}
        if k % 2 == 0:
            counts["course_unreachable"] = 1
        out.append(((date(2025, 3, 5) + timedelta(days=k)).isoformat(), counts))
    return out


def summary(findings_per_category: int = 2, *, run_id: int = 42) -> RunSummary:
    findings = [finding(c, i, context_id=f"course-{i % 3}") for c in CATEGORIES for i in range(findings_per_category)]
    courses = [CourseStatus("canvas", f"course-{i}", "audited", title=f"Biology {i}") for i in range(3)]
    courses += [CourseStatus("moodle", "m-7", "unverified", reason="HTTP 503 from line items after 3 retries",
                             title="Chemistry"),
                CourseStatus("d2l", "d-9", "unverified", reason="token endpoint unavailable")]
    new = {f.identity for f in findings if f.category in ("missing_in_lms", "not_learner")}
    return RunSummary(
        run_id=run_id, kind="nightly", started_at=START, finished_at=START + timedelta(minutes=3, seconds=7),
        state="partial", courses=courses, findings=findings, new=new,
        resolved=[finding("missing_in_lms", 900), finding("link_not_graded", 901)],
        request_stats={"canvas": RequestStats(requests={"token": 2, "line_items": 6, "results": 40}, retries=3,
                                              throttled=1, throttle_wait_s=2.5),
                       "moodle": {"requests": {"token": 1, "line_items": 4}, "retries": 3, "throttled": 0}},
        dq_warnings=[DataQualityWarning("lms_results", "expect_column_values_to_be_between", "canvas", "course-1",
                                        2, sample=[{"user_id": "u1", "result_score": -1.0}])],
        expected_grades={("canvas", f"course-{i}"): 30 for i in range(3)},
        present_grades={("canvas", f"course-{i}"): 25 for i in range(3)},
        history=history(), alert_failures=["slack route 'support': HTTP 500 after 3 attempts"])
