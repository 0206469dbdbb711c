"""The latest finding per cell across audit runs (`gradesync findings --latest`).

A cell is what a finding is about: (platform, course, resource link, LMS user) — one level each, as the
finding identity has it, without the category (a cell's cause may change between runs). A cell's
latest finding is shown unless a later run audited that cell (the course was audited, and the run's
activity filter, if any, covered the cell's activity) and found nothing there: then it is resolved.
"""
from __future__ import annotations

from typing import Any

from sqlmodel import select

import models as m
from gradesync.audit.export import _finding


def _cell(f: m.Finding) -> tuple[str, str, str, str]:
    return (f.platform, f.context_id, f.resource_link_id or "", f.lms_user_id or "")


def latest_findings(database_url: str, *, category: str | None = None,
                    platforms: list[str] | None = None) -> dict[str, Any]:
    """{"runs": [run ids considered], "findings": [finding dicts as in the JSON export, + "run_id"]}."""
    with m.session_scope(m.make_engine(database_url)) as s:
        runs = {r.id: r for r in s.exec(select(m.AuditRun).where(m.AuditRun.kind != "resync",
                                                                  m.AuditRun.state != "running"))}
        activities = {rid: set(r.params.get("activities") or []) for rid, r in runs.items()}
        audited: dict[tuple[str, str], list[int]] = {}
        for ca in s.exec(select(m.CourseAudit).where(m.CourseAudit.status == "audited")):
            if ca.run_id in runs:
                audited.setdefault((ca.platform, ca.context_id), []).append(ca.run_id)
        latest: dict[tuple[str, str, str, str], m.Finding] = {}
        q = select(m.Finding).where(m.Finding.run_id.in_(list(runs))).order_by(m.Finding.run_id, m.Finding.id)
        if platforms:
            q = q.where(m.Finding.platform.in_(platforms))
        for f in s.exec(q):
            latest[_cell(f)] = f                     # ordered by run: the last one wins

        def covered_later(f: m.Finding) -> bool:
            for rid in audited.get((f.platform, f.context_id), []):
                if rid > f.run_id and (not activities[rid] or (f.activity_id in activities[rid])):
                    return True
            return False

        shown = [f for f in latest.values() if not covered_later(f)
                 and (category is None or f.category.value == category)]
        shown.sort(key=lambda f: (f.platform, f.context_id, f.resource_link_id or "", f.lms_user_id or ""))
        tasks = {t.identity: t for t in s.exec(select(m.ResyncTask).where(
            m.ResyncTask.identity.in_([f.identity for f in shown])))} if shown else {}
        return {"runs": sorted({f.run_id for f in shown}),
                "findings": [{**_finding(f, tasks.get(f.identity)), "run_id": f.run_id} for f in shown]}
