"""The audit, as a story.

A run: scope → plan the batches → audit each batch → close the run (new / still open / resolved) →
report → alert. A batch (its own flow run, `audit-batch`): load the tool's records for its courses →
hold its share of the developer key's budget → extract → reconcile → validate (Great Expectations
decides the gaps) → diagnose → write its findings and course statuses.

Batches run in this process (one after another per platform, platforms side by side), or — for a
nightly started from its deployment on a work pool — each as a run of the `audit-batch` deployment,
so any number of workers on any number of machines take them (`distribute`).
`course-audit` is the on-demand entry; `nightly-audit` adds the resync.
"""
from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import deployment, flow_run
from prefect.states import Completed, State
from prefect.utilities.annotations import quote

from gradesync.audit import batch, persist, records
from gradesync.audit.night_plan import plan_night
from gradesync.audit.retention import purge_snapshots
from gradesync.audit.scope_check import require_courses
from gradesync.audit.validate import merge_results
from gradesync.budget import lms_slots
from gradesync.diagnosis.wanted import needs_rest, results_wanted
from gradesync.report.env import report_path
from gradesync.settings import Settings, load_settings
from lti_client import LtiClient
from tasks.audit_steps import diagnose, load_course_records, load_tool_records, reconcile, save_batch, validate
from tasks.extract import extract_platform, read_rest_of, request_stats
from tasks.publish import alert, publish_report

BATCH_DEPLOYMENT = "audit-batch/audit-batch"
BATCH_TRIES = 2          # a batch that failed or crashed is run once more (it is idempotent), then failed
BATCH_TIMEOUT_S = 4 * 3600.0   # a batch on the work pool that no worker finished by then is cancelled


@flow(name="audit-batch", flow_run_name="audit-batch-{run_id}-{seq}", log_prints=False)
async def audit_batch(run_id: int, seq: int, platform: str, context_ids: list[str], purpose: str = "nightly",
                      activities: list[str] | None = None, config: str | None = None) -> dict[str, Any]:
    """One batch of a run's courses, end to end; writes its results to the database and returns its counts."""
    settings = load_settings(config)
    db = settings.database.url
    plan = batch.BatchPlan(seq, platform, tuple(context_ids))
    batch_id = batch.start_batch(db, run_id, plan, str(flow_run.get_id() or ""))
    scope = batch.scope_of_courses(db, settings, platform, list(context_ids), activities)
    reg = settings.platform(platform)
    clock = batch.StepClock()
    # Big values go to tasks quoted: Prefect would otherwise walk every row looking for futures.
    courses, with_work = load_course_records(db, scope)
    # Results only of the line items a grade is expected on or the tool posted to (docs/night-reads.md).
    wanted = {key[1]: results_wanted(course, with_work) for key, course in courses.items()}
    clock.lap("load")
    async with lms_slots(reg, "nightly" if purpose == "nightly" else "on-demand",
                         share=settings.audit.on_demand_reserved_share) as slots:
        clock.lap("wait_budget")
        async with LtiClient(reg, in_flight=slots) as client:
            extraction = await extract_platform(client, platform, scope.courses_of(platform), quote(wanted))
            clock.lap("extract")
            snapshots = {(platform, ctx): snap for ctx, snap in extraction.snapshots.items()}
            tool = load_tool_records(db, quote(scope), quote(snapshots), quote(courses))
            clock.lap("load_people")
            rest = needs_rest(tool.platforms, tool.courses, snapshots)
            if rest:                     # an item looks inactive: its heuristic counts the other items
                snapshots = await read_rest_of(client, platform, quote(snapshots), rest)
                clock.lap("extract")
            stats = request_stats(client)
    rows = reconcile(quote(tool), quote(snapshots))
    outcome = validate(quote(rows), quote(snapshots))
    clock.lap("validate")
    diagnoses = diagnose(quote(tool), quote(snapshots), {platform: extraction.grant}, quote(rows), quote(outcome))
    clock.lap("diagnose")
    counts = save_batch(db, run_id, batch_id, quote(diagnoses), quote(snapshots),
                        {platform: {**stats, "slots": slots}}, quote(outcome), activities, clock.seconds)
    return {"seq": seq, "platform": platform, "worker": batch.worker_name(), "slots": slots, **counts}


def tonight(db: str, settings: Settings, scope: records.AuditScope, full: bool) -> tuple[records.AuditScope, dict]:
    """The nightly's scope narrowed to the courses it reads tonight, and why the others are not read
    (reason → count)."""
    plans = plan_night(db, settings, scope.courses, datetime.now(timezone.utc), full=full)
    read = {(p.platform, p.context_id) for p in plans if p.read}
    courses = [c for c in scope.courses if (c.platform, c.context_id) in read]
    used = [p for p in scope.platforms if any(c.platform == p for c in courses)]
    narrowed = records.AuditScope(used, courses, scope.activities, {p: scope.vendors[p] for p in used})
    return narrowed, dict(Counter(p.reason for p in plans if not p.read))


async def audit_story(kind: str, platforms: list[str] | None, courses: list[str] | None,
                      activities: list[str] | None, alerts: bool, config: str | None,
                      distribute: bool = False, full: bool = False) -> dict[str, Any]:
    """One audit run end to end; returns the run's JSON-able outcome (run id, state, counts, report)."""
    log = get_run_logger()
    settings = load_settings(config)
    db = persist.open_database(settings.database.url)
    # No course in scope stops here with the reason: never a "0 findings" run or an all-clear digest.
    scope = require_courses(db, settings, platforms, courses, activities)
    params = scope.params
    if kind == "nightly":          # read less, miss nothing: docs/night-reads.md
        scope, not_read = tonight(db, settings, scope, full)
        params = {**scope.params, "full": full, "not_read": not_read}
    run_id = persist.start_run(db, kind, params, str(flow_run.get_id() or ""))
    log.info("audit run %s: %d course(s) on %d platform(s)", run_id, len(scope.courses), len(scope.platforms))
    try:
        return await _audit_run(log, kind, settings, db, scope, run_id, alerts, config, distribute)
    except BaseException as e:
        persist.fail_run(db, run_id, f"{type(e).__name__}: {e}")   # never leave a run "running"
        raise


async def _audit_run(log, kind: str, settings: Settings, db: str, scope: records.AuditScope, run_id: int,
                     alerts: bool, config: str | None, distribute: bool) -> dict[str, Any]:
    """The steps of one started run (audit_story marks the run failed if any of them raises)."""
    plans = batch.plan_batches(scope, settings.audit.batch_courses)
    batch.mark_batches_planned(db, run_id, plans)
    purpose = "nightly" if kind == "nightly" else "on-demand"
    log.info("audit run %s: %d batch(es), %s", run_id, len(plans),
             "on the work pool" if distribute else "in this process")
    by_platform: dict[str, list[batch.BatchPlan]] = {}
    for p in plans:
        by_platform.setdefault(p.platform, []).append(p)
    # One developer key per platform: its batches share it (gradesync/budget.py); platforms side by side.
    # In one process a batch's CPU steps would stall another's extraction: one at a time there.
    side_by_side = settings.audit.batches_per_platform if distribute else 1
    await asyncio.gather(*(_platform_batches(ps, run_id, purpose, scope.activities, config, distribute, db,
                                             side_by_side) for ps in by_platform.values()))

    summary = persist.close_run(db, run_id)
    validation = merge_results([b.validation or [] for b in batch.batch_rows(db, run_id)])
    # Alerts link to the report and the report shows alert failures: name the file, alert, then render.
    summary.report_path = str(report_path(settings.audit.report_dir, run_id))
    if alerts:
        summary.alert_failures = alert(db, summary, settings)
    summary.report_path = str(publish_report(db, summary, settings, validation))
    persist.finish_run(db, run_id, summary)
    purge_snapshots(db, settings.audit.snapshot_runs_kept)
    log.info("audit run %s %s: %d finding(s), %d new, %d course(s) unverified; report %s", run_id,
             summary.state, len(summary.findings), len(summary.new), len(summary.unverified), summary.report_path)
    return persist.outcome_of(summary)


async def _platform_batches(plans: list[batch.BatchPlan], run_id: int, purpose: str,
                            activities: list[str] | None, config: str | None, distribute: bool, db: str,
                            side_by_side: int) -> None:
    """One platform's batches, `side_by_side` at a time: on the work pool two overlap, since a batch
    holds the key only while it extracts — the next one extracts while this one validates and writes."""
    gate = asyncio.Semaphore(side_by_side)

    async def one(plan: batch.BatchPlan) -> None:
        async with gate:
            params = dict(run_id=run_id, seq=plan.seq, platform=plan.platform, context_ids=list(plan.context_ids),
                          purpose=purpose, activities=activities, config=config)
            error = "not run"
            for attempt in range(1, BATCH_TRIES + 1):
                error = await (_on_work_pool(params, attempt) if distribute else _in_process(params))
                if error is None:
                    break
                get_run_logger().warning("audit run %s batch %s (%s) try %d failed: %s", run_id, plan.seq,
                                         plan.platform, attempt, error)
            if error is not None:
                batch.fail_batch(db, run_id, plan, error)

    await asyncio.gather(*(one(p) for p in plans))


async def _in_process(params: dict[str, Any]) -> str | None:
    """Run a batch as a subflow here; None when it completed, else why not."""
    try:
        await audit_batch(**params)
        return None
    except Exception as e:                # the batch's courses become unverified, never false findings
        return f"{type(e).__name__}: {e}"[:500]


async def _on_work_pool(params: dict[str, Any], attempt: int) -> str | None:
    """Run a batch as a run of the audit-batch deployment (any worker of the pool) and wait for it.
    The idempotency key makes a re-submitted parent reuse the batch's run instead of starting another."""
    from prefect.deployments import run_deployment

    key = f"{flow_run.get_id()}:{params['seq']}:{attempt}"
    try:
        run = await run_deployment(BATCH_DEPLOYMENT, parameters=params, idempotency_key=key,
                                   timeout=BATCH_TIMEOUT_S)
    except Exception as e:
        return f"could not start on the work pool: {type(e).__name__}: {e}"[:500]
    state = run.state
    if state is not None and state.is_completed():
        return None
    if state is None or not state.is_final():
        # No worker finished it in time: cancel it, so a late run cannot write after the retry.
        await _cancel(run.id)
        return f"batch flow run {run.id} did not finish within {BATCH_TIMEOUT_S / 3600:g} h (no worker took it?)"
    return f"batch flow run {run.id} ended {state.name}: {state.message or ''}"[:500]


async def _cancel(flow_run_id) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    async with get_client() as c:
        await c.set_flow_run_state(flow_run_id, Cancelled(message="gradesync: batch timed out"), force=True)


async def _on_work_pool_now() -> bool:
    """True when this flow run was started from a deployment on a work pool (then its batches can go to
    the pool too); a run served by `gradesync serve`, or called directly, runs its batches here."""
    if deployment.id is None:
        return False
    from prefect.client.orchestration import get_client

    async with get_client() as c:
        run = await c.read_flow_run(flow_run.get_id())
    return bool(run.work_pool_name)


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
    """On-demand audit of some platforms / courses / activities (all when no filter), in this process."""
    return final_state(await audit_story("course-audit", platforms, courses, activities, alerts, config))


@flow(name="nightly-audit", log_prints=False)
async def nightly_audit(alerts: bool = True, resync: bool | None = None, config: str | None = None,
                        distribute: bool | None = None, full: bool = False) -> dict[str, Any] | State:
    """Tonight's courses of every platform (all of them with `full`; docs/night-reads.md); then the
    resync of pending tasks when enabled.
    distribute: batches on the work pool (default: when this run itself runs on the work pool)."""
    if distribute is None:
        distribute = await _on_work_pool_now()
    outcome = await audit_story("nightly", None, None, None, alerts, config, distribute=distribute, full=full)
    settings = load_settings(config)
    if resync if resync is not None else settings.audit.resync_after_audit:
        from flows.resync import resync_pending
        outcome["resync"] = await resync_pending(config=config, budget="nightly")
    return final_state(outcome)
