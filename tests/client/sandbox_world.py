"""Helpers for the client's integration tests over real HTTP: serve a sandbox world, build clients on
its exported registrations, and say what the platform *should* show of the world's state.

The expectations read the sandbox state directly (the ground truth), restating each platform's
visibility rule with its section of lti-platform-behavior.md, so a client or sandbox drift shows up.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx

from gradesync.settings import load_settings
from lti_client import LtiClient, PlatformRegistration
from sandbox_lms import urls
from sandbox_lms.server import RunningSandbox, start_sandbox
from sandbox_lms.state import LEARNER, CourseRecord, LineItemRecord, Registration
from sandbox_lms.worlds import World, build_world


class RecordingTransport(httpx.AsyncBaseTransport):
    """A real HTTP transport that remembers every exchange: (method, url, status, raw Link values)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.seen: list[tuple[str, str, int, list[str]]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        links = [v.decode("utf-8", "replace") for k, v in response.headers.raw if k.lower() == b"link"]
        self.seen.append((request.method, str(request.url), response.status_code, links))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class SandboxWorld:
    """A tiny world served over loopback HTTP, with its exported gradesync.toml loaded."""
    world: World
    sandbox: RunningSandbox
    config: Path

    @property
    def base_url(self) -> str:
        return self.sandbox.base_url

    def state_reg(self, name: str) -> Registration:
        """The sandbox-side registration (live state: control actions show up here)."""
        return self.world.state.registrations[name]

    def registration(self, name: str, **update: object) -> PlatformRegistration:
        """The tool-side registration as exported, optionally changed (e.g. page_size=2)."""
        reg = load_settings(self.config).platform(name)
        return reg.model_copy(update=update) if update else reg

    def client(self, name: str, *, transport: httpx.AsyncBaseTransport | None = None, **update: object) -> LtiClient:
        """A real-HTTP client for registration `name` (short backoff: the sandbox never throttles here)."""
        return LtiClient(self.registration(name, **update), transport=transport, backoff_base=0.01, backoff_cap=0.05)

    def lineitems_url(self, name: str, ctx: str) -> str:
        return urls.lineitems_url(self.base_url, self.state_reg(name), ctx)

    def memberships_url(self, name: str, ctx: str) -> str:
        return urls.memberships_url(self.base_url, self.state_reg(name), ctx)

    def item_url(self, name: str, ctx: str, item_id: int) -> str:
        return urls.line_item_url(self.base_url, self.state_reg(name), ctx, item_id)

    def server_counts(self, name: str) -> dict[str, int]:
        """The sandbox's own request counters of one registration, zero kinds left out."""
        return {kind: n for (reg, kind), n in self.sandbox.counters.requests.items() if reg == name and n}


@contextmanager
def served_world(tmp_path: Path, seed: int = 1) -> Iterator[SandboxWorld]:
    """Build the tiny world `seed`, serve it on 127.0.0.1 and export its config + keys into tmp_path."""
    world = build_world(seed, "tiny")
    with start_sandbox(world.state) as sandbox:
        config = world.export(tmp_path / f"world-{seed}", sandbox.base_url)
        yield SandboxWorld(world, sandbox, config)


# ---- what the platform should show --------------------------------------------------------------
def unreachable(course: CourseRecord) -> bool:
    """Concluded (Canvas 404, §4.2 step 2) or tool removed (401 on every service call, §4.2 step 1)."""
    return course.concluded or course.tool_removed


def visible_items(course: CourseRecord) -> list[LineItemRecord]:
    """Line items the container lists: every non-deleted one (Canvas lists unpublished ones too, §2.2)."""
    return [li for li in course.line_items if not li.deleted]


def visible_results(profile: str, li: LineItemRecord) -> dict[str, tuple[float | None, float, str | None]]:
    """user_id → (resultScore, resultMaximum, comment) the results container should list.
    Canvas lists only rows the tool has posted to (§3.2); Moodle only graded rows (§3.3)."""
    rows = li.results.values()
    if profile == "canvas":
        rows = [r for r in rows if r.tool_posted]
    elif profile == "moodle":
        rows = [r for r in rows if r.result_score is not None]
    else:
        raise ValueError(profile)
    return {r.user_id: (r.result_score, r.result_maximum, r.comment) for r in rows}


def visible_members(course: CourseRecord) -> dict[str, tuple]:
    """user_id → (roles, name, email, given, family): Canvas and Moodle list active enrolments only (§5.2, §5.3)."""
    return {m.user_id: (tuple(m.roles), m.name, m.email, m.given_name, m.family_name)
            for m in course.members if m.status == "Active"}


def pages(rows: int, page_size: int) -> int:
    """Requests needed to list `rows` records `page_size` at a time (an empty list still costs one)."""
    return max(1, math.ceil(rows / page_size))


def reachable_courses(reg: Registration) -> list[CourseRecord]:
    return [c for c in reg.courses.values() if not unreachable(c)]


def learner_without_result(profile: str, reg: Registration) -> tuple[CourseRecord, LineItemRecord, str]:
    """A reachable course, an active line item in it, and an active learner the results don't list yet."""
    for course in reachable_courses(reg):
        for li in visible_items(course):
            if not li.active:
                continue
            shown = visible_results(profile, li)
            for m in course.members:
                if LEARNER in m.roles and m.status == "Active" and m.user_id not in shown \
                        and m.user_id not in li.results:
                    return course, li, m.user_id
    raise AssertionError(f"world has no learner without a result in {reg.name}")
