"""Publishing a run: the HTML report (+ validation page, Prefect artifacts) and the Slack alerts."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from gradesync.findings import CATEGORIES, RunSummary
from gradesync.settings import Settings


@task(name="publish-report", cache_policy=NO_CACHE)
def publish_report(database_url: str, summary: RunSummary, settings: Settings, validation_results: list[dict]) -> Path:
    """HTML report + validation page on disk; a markdown summary and a findings table as artifacts."""
    from gradesync.report import render_report

    path = render_report(summary, Path(settings.audit.report_dir), validation_results=validation_results,
                         database_url=database_url)
    counts = Counter(f.category for f in summary.findings)
    lines = [f"# gradesync audit run {summary.run_id} ({summary.kind}, {summary.state})", "",
             f"{len(summary.findings)} finding(s), {len(summary.new)} new, {len(summary.resolved)} resolved, "
             f"{len(summary.unverified)} course(s) unverified.", "", "| category | findings |", "|---|---|"]
    lines += [f"| {c} | {counts[c]} |" for c in CATEGORIES if counts.get(c)]
    if summary.unverified:
        lines += ["", "**Could not audit:** " + ", ".join(f"{c.platform}/{c.context_id} ({c.reason})"
                                                         for c in summary.unverified[:20])]
    lines += ["", f"Report: `{path}`"]
    create_markdown_artifact(key=f"audit-run-{summary.run_id}", markdown="\n".join(lines),
                             description="gradesync audit summary")
    create_table_artifact(key=f"audit-run-{summary.run_id}-findings", description="first 200 findings",
                          table=[{"category": f.category, "platform": f.platform, "course": f.context_id,
                                  "link": f.resource_link_id or "", "learner": f.lms_user_id or "",
                                  "action": f.action} for f in summary.findings[:200]])
    return path


@task(name="send-alerts", cache_policy=NO_CACHE)
def alert(database_url: str, summary: RunSummary, settings: Settings) -> list[str]:
    """Slack digest + incidents (or the console when no webhook); failures are returned, never raised."""
    import models as m
    from gradesync.alerts import send_run_alerts

    with m.session_scope(m.make_engine(database_url)) as s:
        outcome = send_run_alerts(s, summary, settings)
    return list(outcome.failures)
