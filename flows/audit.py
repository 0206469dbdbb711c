"""The audit, as a story: scope → extract → load tool records → reconcile → validate → diagnose →
persist → report → alert. `course-audit` is the on-demand entry; `nightly-audit` adds the resync."""
from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import Completed, State

from gradesync import progress
from gradesync.audit import persist, records
from gradesync.audit.scope_check import require_courses
from gradesync.report.env import report_path
from gradesync.settings import Settings, load_settings
from tasks.audit_steps import diagnose, load_tool_records, persist_run, reconcile, validate
from tasks.extract import extract_platform
from tasks.publish import alert, publish_report


async def audit_story(kind: str, platforms: list[str] | None, courses: list[str] | None,
                      activities: list[str] | None, alerts: bool, config: str | None) -> dict[str, Any]:
    """One audit run end to end; returns the run's JSON-able outcome (run id, state, counts, report)."""
    log = get_run_logger()
    settings = load_settings(config)
    db = persist.open_database(settings.database.url)
    # No course in scope stops here with the reason: never a "0 findings" run or an all-clear digest.
    scope = require_courses(db, settings, platforms, courses, activities)
    run_id = persist.start_run(db, kind, scope.params, str(flow_run.get_id() or ""))
    log.info("audit run %s: %d course(s) on %d platform(s)", run_id, len(scope.courses), len(scope.platforms))
    try:
        return await _audit_run(log, settings, db, scope, run_id, alerts)
    except BaseException as e:
        persist.fail_run(db, run_id, f"{type(e).__name__}: {e}")   # never leave a run "running"
        raise


async def _audit_run(log, settings: Settings, db: str, scope: records.AuditScope, run_id: int,
                     alerts: bool) -> dict[str, Any]:
    """The steps of one started run (audit_story marks the run failed if any of them raises)."""
    # Extract: platforms in parallel; within a platform, the client's in-flight limit paces requests.
    progress.start(len(scope.courses), "extracting courses")
    extractions = await asyncio.gather(*(
        extract_platform(settings.platform(name), scope.courses_of(name)) for name in scope.platforms))
    snapshots = {(name, ctx): snap for name, ex in zip(scope.platforms, extractions)
                 for ctx, snap in ex.snapshots.items()}
    grants = {name: ex.grant for name, ex in zip(scope.platforms, extractions)}
    request_stats = {name: ex.request_stats for name, ex in zip(scope.platforms, extractions)}

    tool = load_tool_records(db, scope)
    rows = reconcile(tool, snapshots)
    outcome = validate(rows, snapshots)
    diagnoses = diagnose(tool, snapshots, grants, rows, outcome)
    summary = persist_run(db, run_id, diagnoses, snapshots, request_stats, outcome)

    # Alerts link to the report and the report shows alert failures: name the file, alert, then render.
    summary.report_path = str(report_path(settings.audit.report_dir, run_id))
    if alerts:
        summary.alert_failures = alert(db, summary, settings)
    summary.report_path = str(publish_report(db, summary, settings, outcome.results))
    persist.finish_run(db, run_id, summary)
    log.info("audit run %s %s: %d finding(s), %d new, %d course(s) unverified; report %s", run_id,
             summary.state, len(summary.findings), len(summary.new), len(summary.unverified), summary.report_path)
    return persist.outcome_of(summary)


def final_state(outcome: dict[str, Any]) -> dict[str, Any] | State:
    """A run with unverified courses ends as a Completed state named "Partial" (visible in the Prefect UI);
    the caller still receives the outcome dict."""
    if outcome.get("unverified"):
        return Completed(data=outcome, name="Partial",
                         message=f"{outcome['unverified']} course(s) could not be audited (unverified)")
    return outcome


@flow(name="course-audit", log_prints=False)
async def course_audit(platforms: list[str] | None = None, courses: list[str] | None = None,
                       activities: list[str] | None = None, alerts: bool = True,
                       config: str | None = None) -> dict[str, Any] | State:
    """On-demand audit of some platforms / courses / activities (all when no filter)."""
    return final_state(await audit_story("course-audit", platforms, courses, activities, alerts, config))


@flow(name="nightly-audit", log_prints=False)
async def nightly_audit(alerts: bool = True, resync: bool | None = None,
                        config: str | None = None) -> dict[str, Any] | State:
    """Every platform, every linked course; then the resync of pending tasks when enabled."""
    outcome = await audit_story("nightly", None, None, None, alerts, config)
    settings = load_settings(config)
    if resync if resync is not None else settings.audit.resync_after_audit:
        from flows.resync import resync_pending
        outcome["resync"] = await resync_pending(config=config)
    return final_state(outcome)
