"""Thin Prefect tasks around the audit's plain functions (gradesync.audit.*, gradesync.diagnosis)."""
from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from gradesync.audit import batch, records
from gradesync.audit.validate import ValidationOutcome, gaps_by_course, trim_results, validate_run
from gradesync.diagnosis.course import CourseDiagnosis, diagnose_course
from gradesync.diagnosis.expected import ExpectedGrade, expected_grades
from gradesync.diagnosis.inputs import CourseSnapshot, ScoreGrant

TASK = dict(cache_policy=NO_CACHE)


@task(name="load-course-records", **TASK)
def load_course_records(database_url: str, scope: records.AuditScope) -> tuple[dict, set[str]]:
    """Before extraction: the batch's courses (info, links, passbacks) and the activities with work."""
    courses = records.load_course_records(database_url, scope)
    return courses, records.activities_with_work(database_url, courses)


@task(name="load-tool-records", **TASK)
def load_tool_records(database_url: str, scope: records.AuditScope,
                      snapshots: dict[tuple[str, str], CourseSnapshot], courses: dict) -> records.ToolRecords:
    """After extraction: accounts, identities and completions read by the keys the snapshots name."""
    return records.load_tool_records(database_url, scope, snapshots, courses=courses)


@task(name="reconcile", **TASK)
def reconcile(tool: records.ToolRecords,
              snapshots: dict[tuple[str, str], CourseSnapshot]) -> dict[tuple[str, str], list[ExpectedGrade]]:
    """The expected-grade frame, per course: only courses that were extracted."""
    out: dict[tuple[str, str], list[ExpectedGrade]] = {}
    for key, course in tool.courses.items():
        snap = snapshots.get(key)
        if snap is None or snap.error is not None:
            continue
        out[key] = expected_grades(tool.platforms[key[0]], course, snap)
    return out


@task(name="validate", **TASK)
def validate(rows: dict[tuple[str, str], list[ExpectedGrade]],
             snapshots: dict[tuple[str, str], CourseSnapshot]) -> ValidationOutcome:
    flat = [g for course_rows in rows.values() for g in course_rows]
    return validate_run(flat, snapshots)


@task(name="diagnose", **TASK)
def diagnose(tool: records.ToolRecords, snapshots: dict[tuple[str, str], CourseSnapshot],
             grants: dict[str, ScoreGrant], rows: dict[tuple[str, str], list[ExpectedGrade]],
             outcome: ValidationOutcome) -> list[CourseDiagnosis]:
    """Why each gap is a gap. What a gap is, completion_sync's unexpected rows say (outcome.gaps)."""
    flat = [g for course_rows in rows.values() for g in course_rows]
    gaps = gaps_by_course(flat, outcome.gaps)
    return [diagnose_course(tool.platforms[key[0]], course, snapshots[key], grants[key[0]],
                            gaps=gaps.get(key, set()), rows=rows.get(key))
            for key, course in tool.courses.items()]


@task(name="save-batch", **TASK)
def save_batch(database_url: str, run_id: int, batch_id: int, diagnoses: list[CourseDiagnosis],
               snapshots: dict[tuple[str, str], CourseSnapshot], request_stats: dict,
               outcome: ValidationOutcome, activities: list[str] | None, timings: dict[str, float]) -> dict:
    return batch.save_batch(database_url, run_id, batch_id, diagnoses, snapshots, request_stats,
                            trim_results(outcome.results), outcome.warnings, set(activities) if activities else None,
                            timings)
