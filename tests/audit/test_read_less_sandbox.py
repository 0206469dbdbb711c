"""Results only where needed (issue 12 goal 4), against the real sandbox LMS over loopback HTTP: with
`results_wanted`, extraction asks for fewer results, and the diagnosis of every course of a world with
every planted category gives exactly the findings of a full read."""
from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timezone
from pathlib import Path

import models as m
from gradesync.audit.extract import extract_course, failed_snapshot, read_rest
from gradesync.audit.records import load_tool_records, resolve_scope
from gradesync.diagnosis.course import diagnose_course
from tests.suite_gaps import suite_gaps
from gradesync.diagnosis.inputs import ScoreGrant
from gradesync.diagnosis.wanted import activities_with_work, rest_needed, results_wanted
from gradesync.importer import import_folder
from gradesync.settings import load_settings
from lti_client import LtiClient, LtiError
from lti_client.types import SCOPE_SCORE
from sandbox_lms.server import start_sandbox
from sandbox_lms.state import LEARNER, LineItemRecord, ResultRecord
from sandbox_lms.worlds import build_world
from sandbox_lms.worlds.model import Link

TEACHER_GRADED_AT = datetime(2026, 3, 1, tzinfo=timezone.utc)


def add_future_assignments(world) -> int:
    """Each course gets a graded assignment nobody has done in the tool yet (its line item is in the LMS,
    due later); in half of them a teacher already typed a grade for one learner. No expected grade and
    no passback concerns them, so their results need not be read. Returns how many were added."""
    added = 0
    for reg in world.state.registrations.values():
        for i, course in enumerate(reg.courses.values()):
            rl = str(900_000 + i) if reg.profile == "moodle" else f"future-{course.context_id}"
            world.records.links.append(Link(reg.name, course.context_id, rl, f"act-future-{reg.name}-{i}",
                                            "Final project (due later)", True))
            item = LineItemRecord(id=reg.next_line_item_id, label="Final project (due later)", score_maximum=100.0,
                                  resource_link_id=rl, resource_id=None if reg.profile == "canvas" else rl)
            reg.next_line_item_id += 1
            learner = next((mb for mb in course.members if LEARNER in mb.roles), None)
            if i % 2 and learner is not None:
                item.results[learner.user_id] = ResultRecord(
                    learner.user_id, 70.0, 100.0, TEACHER_GRADED_AT, scoring_user_id="teacher-1",
                    by_tool=False, tool_posted=False)
            course.line_items.append(item)
            added += 1
    return added


async def diagnose_platform(settings, name: str, refs, records, counters, *, filtered: bool):
    """Extract and diagnose every course of one platform; returns ({ctx: diagnosis}, results requests)."""
    before = counters.requests.get((name, "results"), 0)
    out = {}
    async with LtiClient(settings.platform(name), backoff_base=0.01, backoff_cap=0.05) as client:
        try:
            grant = ScoreGrant.from_token_grant(await client.score_grant(), SCOPE_SCORE)
        except LtiError as e:
            grant = ScoreGrant.from_error(e.info)
        rec = records.platforms[name]
        for ref in refs:
            course = records.courses[(name, ref.context_id)]
            wanted = results_wanted(course, activities_with_work(rec)) if filtered else None
            try:
                snap = await extract_course(client, ref.lineitems_url, ref.memberships_url, wanted)
                if filtered and rest_needed(rec, course, snap):
                    snap = await read_rest(client, snap)
            except LtiError as e:
                snap = failed_snapshot(e)
            out[ref.context_id] = (diagnose_course(rec, course, snap, grant, suite_gaps(rec, course, snap)), snap)
    return out, counters.requests.get((name, "results"), 0) - before


def test_wanted_results_read_fewer_and_find_exactly_the_same(tmp_path: Path):
    world = build_world(7, "demo")
    assert len({p.category for p in world.ground_truth}) == 11            # every category planted
    added = add_future_assignments(world)
    db = f"sqlite:///{tmp_path / 'gs.db'}"
    with start_sandbox(world.state) as sandbox:
        config = world.export(tmp_path / "world", sandbox.base_url)
        settings = load_settings(config)
        m.upgrade_database(db)
        with m.session_scope(m.make_engine(db)) as s:
            assert not import_folder(s, tmp_path / "world", settings).rejections
        scope = resolve_scope(db, settings, None, None, None)
        records = load_tool_records(db, scope)

        async def both():
            full, lean, requests = {}, {}, {"full": 0, "lean": 0}
            for name in scope.platforms:
                refs = [c for c in scope.courses if c.platform == name]
                f, nf = await diagnose_platform(settings, name, refs, records, sandbox.counters, filtered=False)
                w, nw = await diagnose_platform(settings, name, refs, records, sandbox.counters, filtered=True)
                full.update({(name, k): v for k, v in f.items()})
                lean.update({(name, k): v for k, v in w.items()})
                requests["full"] += nf
                requests["lean"] += nw
            return full, lean, requests

        full, lean, requests = asyncio.run(both())

    # Fewer results requests: every item left unread saved its one results page (the added assignments
    # hold at most one result). Only courses that ask for the others (an item that looks inactive, or a
    # platform that never received scores) read them all.
    unread = sum(len(snap.results_not_read) for _, snap in lean.values())
    assert requests["full"] - requests["lean"] == unread, (requests, unread)
    reachable = [k for k, (d, _) in full.items() if d.status.status == "audited"]
    read_all = [k for k in reachable if not lean[k][1].results_not_read]
    assert len(reachable) - len(read_all) >= 12 and added >= len(reachable), (len(reachable), read_all)

    def findings(d):
        return sorted((f.identity, dataclasses.asdict(f)) for f in d.findings)

    assert full.keys() == lean.keys()
    for key in full:
        (fd, _), (ld, _) = full[key], lean[key]
        assert findings(ld) == findings(fd), key                   # evidence included
        assert (ld.status, ld.expected_count, ld.present_count, ld.unverified_items) == \
               (fd.status, fd.expected_count, fd.present_count, fd.unverified_items), key
    found = {f.identity for d, _ in full.values() for f in d.findings}
    assert found == {p.identity for p in world.ground_truth}
    # The heuristic item_not_active courses asked for the other items' results (the finding counts them).
    heuristic = {(f.platform, f.context_id) for d, _ in full.values() for f in d.findings
                 if f.category == "item_not_active" and "other_items_with_results" in f.evidence}
    assert heuristic
    for key in heuristic:
        assert not lean[key][1].results_not_read, key
