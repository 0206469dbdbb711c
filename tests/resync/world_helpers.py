"""A served sandbox world with resync tasks queued from its planted ground truth (no audit needed);
`Served.resync` runs the `resync` flow in this process against a real Prefect server (`prefect_env`)."""
from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import models as m
from gradesync.diagnosis.actions import ACTIONS
from gradesync.findings import identity_of
from gradesync.importer import import_folder
from gradesync.resync.queue import queue_from_findings
from gradesync.settings import Settings, load_settings
from sandbox_lms import urls
from sandbox_lms.server import RunningSandbox, start_sandbox
from sandbox_lms.state import LEARNER
from sandbox_lms.worlds import World, build_world

T = TypeVar("T")
QUEUED = ("missing_in_lms", "score_mismatch", "manual_grade_conflict")


@dataclass(frozen=True)
class Cell:
    """One planted gap, located in the sandbox."""
    category: str
    platform: str
    context_id: str
    resource_link_id: str
    lms_user_id: str
    item_id: int
    line_item_url: str
    score_given: float
    score_maximum: float

    @property
    def normalised(self) -> float:
        return self.score_given / self.score_maximum


@dataclass(frozen=True)
class RunTally:
    """What the `resync` flow returned, as the tests read it."""
    run_id: int
    claimed: int
    sends: int
    outcomes: Counter
    unverified_courses: dict[tuple[str, str], str]
    platform_errors: dict[str, str]
    request_stats: dict[str, Any]

    @classmethod
    def of(cls, out: dict[str, Any]) -> "RunTally":
        return cls(out["run_id"], out["claimed"], out["sends"], Counter(out["outcomes"]),
                   {(u["platform"], u["context_id"]): u["reason"] for u in out["unverified_courses"]},
                   out["platform_errors"], out["request_stats"])


def in_prefect(prefect_api: str, main: Callable[[], Awaitable[T]]) -> T:
    """`asyncio.run(main())` with this process's Prefect client pointed at `prefect_api`; its logs and
    events are delivered before returning (not at exit, when the session's server is gone)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_api}):
        try:
            return asyncio.run(main())
        finally:
            APILogWorker.drain_all()
            EventsWorker.drain_all()


def run_resync_flow(prefect_api: str, **params: Any) -> dict[str, Any]:
    """The `resync` flow run in this process, reporting to the Prefect server at `prefect_api`."""
    from flows.resync import resync_pending

    return in_prefect(prefect_api, lambda: resync_pending(**params))


@dataclass
class Served:
    world: World
    sandbox: RunningSandbox
    config: Path
    settings: Settings
    database_url: str
    cells: list[Cell]
    run_id: int
    prefect_api: str | None = None

    def cell(self, category: str, platform_prefix: str) -> Cell:
        return next(c for c in self.cells if c.category == category and c.platform.startswith(platform_prefix))

    def lms_norm(self, cell: Cell) -> float | None:
        li = self.world.state.registrations[cell.platform].courses[cell.context_id].line_item(cell.item_id)
        r = li.results.get(cell.lms_user_id)
        return None if r is None or r.result_score is None else r.result_score / r.result_maximum

    def posts(self, cell: Cell) -> int:
        return self.sandbox.counters.scores_for(cell.platform, cell.context_id, cell.item_id, cell.lms_user_id)

    def tasks(self) -> list[m.ResyncTask]:
        from sqlmodel import select
        with m.session_scope(m.make_engine(self.database_url)) as s:
            return list(s.exec(select(m.ResyncTask).order_by(m.ResyncTask.id)))

    def task_of(self, cell: Cell) -> m.ResyncTask:
        """The cell's latest task."""
        return [t for t in self.tasks() if (t.platform, t.lms_user_id, t.context_id) ==
                (cell.platform, cell.lms_user_id, cell.context_id) and t.line_item_id == cell.line_item_url][-1]

    def add_cells(self, cells: list[Cell]) -> int:
        """Queue `cells` as gaps too (a new audit run that also still holds the earlier ones)."""
        self.cells = self.cells + cells
        self.run_id = queue_cells(self.database_url, self.cells)
        return self.run_id

    def resync(self, worker: str = "test", limit: int | None = None, reclaim_after_s: float = 600,
               platforms: list[str] | None = None, budget: str = "on-demand") -> RunTally:
        """One `resync` flow run (as `gradesync resync run` starts it), in this process."""
        assert self.prefect_api, "served_world(..., prefect_api=prefect_env['PREFECT_API_URL']) runs the flow"
        return RunTally.of(run_resync_flow(self.prefect_api, platforms=platforms, limit=limit, config=str(self.config),
                                           worker=worker, reclaim_after_s=reclaim_after_s, budget=budget))


def unscored_cells(world: World, base_url: str, platform_prefix: str, n: int, *, one_item: bool = False,
                   score: tuple[float, float] = (7.0, 10.0)) -> list[Cell]:
    """`n` more `missing_in_lms` gaps: active learners with no result on a published graded item of
    the platform (all on one item when `one_item`), with the tool's `score`."""
    planted = {(f.platform, f.context_id, f.resource_link_id, f.lms_user_id) for f in world.ground_truth}
    for name, reg in sorted(world.state.registrations.items()):
        if not name.startswith(platform_prefix):
            continue
        for ctx, course in sorted(reg.courses.items()):
            if course.concluded or course.tool_removed:
                continue
            found: list[Cell] = []
            for li in course.line_items:
                if not li.resource_link_id or not li.active or li.deleted:
                    continue
                for member in course.members:
                    if member.status != "Active" or LEARNER not in member.roles or member.user_id in li.results \
                            or (name, ctx, li.resource_link_id, member.user_id) in planted:
                        continue    # a planted gap (e.g. a timed-out passback) is queued already
                    found.append(Cell("missing_in_lms", name, ctx, li.resource_link_id, member.user_id, li.id,
                                      urls.line_item_url(base_url, reg, ctx, li.id), *score))
                if one_item and len(found) >= n:
                    return found[:n]
                if one_item:
                    found = []
            if not one_item and len(found) >= n:
                return found[:n]
    raise AssertionError(f"the world has no {n} unscored cells on {platform_prefix}")


def planted_cells(world: World, base_url: str) -> list[Cell]:
    """Every planted learner gap the resync queues, with its line item and the tool's score."""
    activity = {(lk.platform, lk.context_id, lk.resource_link_id): lk.activity_id for lk in world.records.links}
    cells = []
    for f in world.ground_truth:
        if f.category not in QUEUED:
            continue
        reg = world.state.registrations[f.platform]
        li = next(li for li in reg.courses[f.context_id].line_items if li.resource_link_id == f.resource_link_id)
        comp = world.records.completions[(f.account_id, activity[(f.platform, f.context_id, f.resource_link_id)])]
        cells.append(Cell(f.category, f.platform, f.context_id, f.resource_link_id, f.lms_user_id, li.id,
                          urls.line_item_url(base_url, reg, f.context_id, li.id), comp.score_given,
                          comp.score_maximum))
    return cells


def queue_cells(database_url: str, cells: list[Cell]) -> int:
    """Store the cells as one audit run's findings (courses audited) and queue them; returns the run id."""
    with m.session_scope(m.make_engine(database_url)) as s:
        run = m.AuditRun(kind="nightly", state="completed")
        s.add(run)
        s.flush()
        for p, c in sorted({(c.platform, c.context_id) for c in cells}):
            s.add(m.CourseAudit(run_id=run.id, platform=p, context_id=c, status="audited"))
        rows = [m.Finding(run_id=run.id, identity=identity_of(c.category, c.platform, c.context_id,
                                                              c.resource_link_id, c.lms_user_id),
                          category=m.FindingCategory(c.category), level="learner", platform=c.platform,
                          context_id=c.context_id, resource_link_id=c.resource_link_id, activity_id="act",
                          line_item_id=c.line_item_url, lms_user_id=c.lms_user_id, tool_score=c.score_given,
                          tool_maximum=c.score_maximum, evidence={"completed_at": "2025-01-10T09:30:00+00:00"},
                          action=ACTIONS[c.category]) for c in cells]
        s.add_all(rows)
        s.flush()
        queue_from_findings(s, run.id, rows)
        return run.id


@contextmanager
def served_world(tmp_path: Path, database_url: str, seed: int = 7, size: str = "tiny", *,
                 prefect_api: str | None = None, **kw):
    """Build and serve a world, export its config (pointed at `database_url`), queue its planted gaps.
    `prefect_api`: the Prefect server `Served.resync` reports to."""
    world = build_world(seed, size, **kw)
    with start_sandbox(world.state) as sandbox:
        config = world.export(tmp_path / "world", sandbox.base_url)
        with config.open("a", encoding="utf-8") as fh:
            fh.write(f'\n[database]\nurl = "{database_url}"\n')
        m.upgrade_database(database_url)
        settings = load_settings(config)
        with m.session_scope(m.make_engine(database_url)) as s:
            import_folder(s, config.parent, settings)      # the tool's records, as `gradesync import` does
        cells = planted_cells(world, sandbox.base_url)
        run_id = queue_cells(database_url, cells)
        yield Served(world, sandbox, config, settings, database_url, cells, run_id, prefect_api)
