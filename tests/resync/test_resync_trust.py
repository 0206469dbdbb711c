"""Issue 10: the resync never replaces a person's grade unapproved, tells a kept grade from a landed one,
sends no comment, stops on platform rescaling, probes inactive items, and knows its own sends.
Real HTTP against the sandbox LMS, the real database."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import select

import models as m
from gradesync.resync.plan import approve
from tests.resync.world_helpers import Cell, served_world, unscored_cells

S = m.ResyncState
TOL = 0.005
CANVAS_EXT = "https://canvas.instructure.com/lti/submission"


@pytest.fixture
def canvas(tmp_path, migrated_db_url, prefect_env):
    with served_world(tmp_path, migrated_db_url, profiles=("canvas",), prefect_api=prefect_env["PREFECT_API_URL"]) \
            as served:
        yield served


def _rec(served, c: Cell):
    return served.world.state.registrations[c.platform].courses[c.context_id].line_item(c.item_id).results.get(c.lms_user_id)


def _bodies(served, c: Cell) -> list[dict]:
    return [b.body for b in served.sandbox.runtime.score_bodies
            if (b.registration, b.context_id, b.item_id, b.body.get("userId")) ==
            (c.platform, c.context_id, c.item_id, c.lms_user_id)]


def _finding(served, c: Cell, run_id: int) -> m.Finding:
    with m.session_scope(m.make_engine(served.database_url)) as s:
        return s.exec(select(m.Finding).where(m.Finding.run_id == run_id, m.Finding.lms_user_id == c.lms_user_id,
                                              m.Finding.line_item_id == c.line_item_url)).one()


def test_canvas_hidden_teacher_grade_is_kept_and_the_task_fails_not_verified(canvas):
    [cell] = unscored_cells(canvas.world, canvas.sandbox.base_url, "canvas", 1)
    li = canvas.world.state.registrations[cell.platform].courses[cell.context_id].line_item(cell.item_id)
    teacher = 0.3 * li.score_maximum
    canvas.sandbox.control.plant_hidden_teacher_grade(cell.platform, cell.context_id, cell.item_id,
                                                      cell.lms_user_id, teacher)
    canvas.add_cells([cell])              # the audit sees no result (AGS hides the teacher's grade): missing

    tally = canvas.resync()

    rec = _rec(canvas, cell)
    assert (rec.result_score, rec.by_tool) == (teacher, False)            # the teacher's grade is intact
    t = canvas.task_of(cell)
    assert (t.state, t.last_outcome) == (S.failed, "failed:accepted_not_shown"), t.last_response
    assert "Canvas kept a grade entered by a person" in t.last_response
    assert tally.outcomes["failed:accepted_not_shown"] == 1
    assert canvas.posts(cell) == 1
    [body] = _bodies(canvas, cell)
    assert body[CANVAS_EXT]["prioritize_non_tool_grade"] is True and "comment" not in body
    # Sent on a maximum other than the item's, so the read-back can tell (landing.CanvasLanding).
    assert body["scoreMaximum"] != li.score_maximum
    assert body["scoreGiven"] / body["scoreMaximum"] == pytest.approx(cell.normalised)
    f = _finding(canvas, cell, canvas.run_id)
    assert f.evidence["resync"]["kept_by_person"] is True

    # The next audit sees a value the tool is not known to have sent: a manual_grade_conflict. The cell
    # whose send the platform ignored is not queued again; the finding says a send was tried.
    conflict = Cell("manual_grade_conflict", *[getattr(cell, k) for k in (
        "platform", "context_id", "resource_link_id", "lms_user_id", "item_id", "line_item_url",
        "score_given", "score_maximum")])
    canvas.cells = [c for c in canvas.cells if c is not cell]
    canvas.add_cells([conflict])
    assert canvas.task_of(conflict).id == t.id and canvas.task_of(conflict).state is S.failed
    f = _finding(canvas, conflict, canvas.run_id)
    assert f.evidence["resync"]["outcome"] == "failed:accepted_not_shown"
    assert f.evidence["resync"]["supersede_tried"] is False
    assert canvas.resync().sends == 0

    # An approval re-opens it as a supersede: prioritize_non_tool_grade false, the teacher grade replaced.
    assert approve(canvas.database_url, "ana", [f.id]).approved == [t.id]
    canvas.resync()
    t = canvas.task_of(conflict)
    assert t.state is S.verified and t.approved_by == "ana", t.last_response
    assert _bodies(canvas, cell)[-1][CANVAS_EXT]["prioritize_non_tool_grade"] is False
    assert _rec(canvas, cell).by_tool and canvas.lms_norm(cell) == pytest.approx(cell.normalised, abs=TOL)


def test_canvas_missing_grade_lands_and_is_verified_with_prioritize_on(canvas):
    cells = unscored_cells(canvas.world, canvas.sandbox.base_url, "canvas", 2)
    canvas.add_cells(cells)
    with m.session_scope(m.make_engine(canvas.database_url)) as s:      # no container URL on record:
        for course in s.exec(select(m.Course).where(m.Course.context_id == cells[0].context_id)):
            course.lineitems_url = None                                 # derived from the item URL (§2.2)
    canvas.resync()
    for c in cells:
        t = canvas.task_of(c)
        assert t.state is S.verified and canvas.posts(c) == 1, t.last_response
        assert canvas.lms_norm(c) == pytest.approx(c.normalised, abs=TOL) and _rec(canvas, c).by_tool
    canvas_bodies = [b.body for b in canvas.sandbox.runtime.score_bodies]
    assert canvas_bodies and all(b[CANVAS_EXT]["prioritize_non_tool_grade"] is True for b in canvas_bodies)
    assert all("comment" not in b for b in canvas_bodies)


def test_canvas_item_not_active_is_probed_once_per_run_and_released_when_published(canvas):
    cells = unscored_cells(canvas.world, canvas.sandbox.base_url, "canvas", 3, one_item=True)
    first = cells[0]
    canvas.sandbox.control.set_published(first.platform, first.context_id, first.item_id, False)
    canvas.add_cells(cells)
    posts = lambda: sum(canvas.posts(c) for c in cells)

    canvas.resync()
    assert posts() == 1                                     # the first is refused; the others wait unsent
    assert all(canvas.task_of(c).state is S.pending and canvas.task_of(c).item_blocked_at for c in cells)
    for _ in range(2):
        canvas.resync()
    assert posts() == 3                                     # one probe per run, never all of them
    assert canvas.posts(first) == 3                         # the oldest gap is the probe

    canvas.sandbox.control.set_published(first.platform, first.context_id, first.item_id, True)
    tally = canvas.resync()
    assert all(canvas.task_of(c).state is S.verified for c in cells)        # the rest went in the same run
    assert posts() == 3 + 3 and tally.sends == 3


def test_d2l_cap_above_the_maximum_fails_at_once_with_the_platform_value(tmp_path, migrated_db_url, prefect_env):
    with served_world(tmp_path, migrated_db_url, seed=3, size="bench", courses=2, items=3, learners=8,
                      profiles=("d2l",), prefect_api=prefect_env["PREFECT_API_URL"]) as d2l:
        [cell] = unscored_cells(d2l.world, d2l.sandbox.base_url, "d2l", 1, score=(12.0, 10.0))   # a bonus
        d2l.add_cells([cell])
        d2l.resync()
        t = d2l.task_of(cell)
        assert (t.state, t.last_outcome) == (S.failed, "failed:accepted_not_shown"), t.last_response
        assert d2l.lms_norm(cell) == pytest.approx(1.0) and "shows" in t.last_response
        assert d2l.posts(cell) == 1
        d2l.add_cells([])                          # the next audit: still a gap, not queued again
        assert d2l.task_of(cell).id == t.id and d2l.resync().sends == 0


def test_moodle_own_sends_within_a_second_are_not_a_manual_grade(tmp_path, migrated_db_url, prefect_env):
    with served_world(tmp_path, migrated_db_url, profiles=("moodle",), prefect_api=prefect_env["PREFECT_API_URL"]) \
            as moodle:
        [cell] = unscored_cells(moodle.world, moodle.sandbox.base_url, "moodle-main", 1, score=(6.0, 10.0))
        moodle.add_cells([cell])
        moodle.resync()
        assert moodle.task_of(cell).state is S.verified
        # A retake right away: a new task for the same cell, in the same second as our first send.
        retake = Cell("score_mismatch", cell.platform, cell.context_id, cell.resource_link_id, cell.lms_user_id,
                      cell.item_id, cell.line_item_url, 9.0, 10.0)
        moodle.cells = [c for c in moodle.cells if c is not cell]
        moodle.add_cells([retake])
        moodle.resync()
        t = moodle.task_of(retake)
        assert (t.state, t.category) == (S.verified, m.FindingCategory.score_mismatch), t.last_response
        assert moodle.posts(cell) == 2

        # Our earlier send stored an hour ahead (e.g. a supersede beat a later edit): Moodle shows that
        # time; a new task of the cell knows it is its own and beats it instead of calling it a person's.
        ahead = datetime.now(timezone.utc) + timedelta(hours=1)
        with m.session_scope(m.make_engine(moodle.database_url)) as s:
            s.add(m.ResyncAttempt(task_id=t.id, attempt_no=t.attempts + 1, timestamp_sent=ahead, outcome="landed"))
        rec = _rec(moodle, cell)
        rec.stored_at = datetime.fromtimestamp(math.floor(ahead.timestamp()), timezone.utc)
        again = Cell("score_mismatch", *[getattr(retake, k) for k in (
            "platform", "context_id", "resource_link_id", "lms_user_id", "item_id", "line_item_url")], 4.0, 10.0)
        moodle.cells = [c for c in moodle.cells if c is not retake]
        moodle.add_cells([again])
        moodle.resync()
        t = moodle.task_of(again)
        assert (t.state, t.category) == (S.verified, m.FindingCategory.score_mismatch), t.last_response
        assert moodle.posts(cell) == 3 and moodle.lms_norm(cell) == pytest.approx(0.4, abs=TOL)
