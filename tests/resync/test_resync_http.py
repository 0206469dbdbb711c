"""The resync over real HTTP against the sandbox LMS (canvas and moodle profiles of a tiny world)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

import models as m
from gradesync.resync.plan import approve
from gradesync.resync.sender import CRASH_ENV, InjectedCrash
from tests.resync.world_helpers import served_world, unscored_cells

S = m.ResyncState
TOL = 0.005
CANVAS_EXT = "https://canvas.instructure.com/lti/submission"


@pytest.fixture
def served(tmp_path, migrated_db_url, prefect_env):
    with served_world(tmp_path, migrated_db_url, prefect_api=prefect_env["PREFECT_API_URL"]) as world:
        # The tiny world plants no Canvas missing_in_lms: add one (a learner with no result).
        world.add_cells(unscored_cells(world.world, world.sandbox.base_url, "canvas", 1))
        yield world


def _findings(served, run_id=None) -> list[m.Finding]:
    with m.session_scope(m.make_engine(served.database_url)) as s:
        return list(s.exec(select(m.Finding).where(m.Finding.run_id == (run_id or served.run_id))))


def _rec(served, c):
    return served.world.state.registrations[c.platform].courses[c.context_id].line_item(c.item_id).results.get(c.lms_user_id)


def test_resync_fixes_every_missing_and_mismatch_and_leaves_conflicts_alone(served):
    fixable = [c for c in served.cells if c.category != "manual_grade_conflict"]
    # Canvas keeps any present grade under prioritize_non_tool_grade (§4.2): a score_mismatch there
    # is held for approval, not POSTed (the POST would change nothing but the row the audit reads).
    held = [c for c in fixable if c.category == "score_mismatch" and c.platform.startswith("canvas")]
    sent = [c for c in fixable if c not in held]
    conflicts = [c for c in served.cells if c.category == "manual_grade_conflict"]
    assert {c.platform.split("-")[0] for c in sent} == {"canvas", "moodle"} and held
    before = {c: served.lms_norm(c) for c in conflicts + held}

    tally = served.resync()

    for c in sent:
        assert served.lms_norm(c) == pytest.approx(c.normalised, abs=TOL), c
        assert served.posts(c) == 1
        t = served.task_of(c)
        assert t.state is S.verified and t.attempts == 1 and t.last_outcome == "verified"
        rec = _rec(served, c)
        assert rec.comment is None                      # no student-visible comment (§4.1, §10)
        # a fresh timestamp, not the completion time (2025-01-10): the platform stored it
        assert rec.stored_at > m.utcnow() - timedelta(minutes=5)
    for c in conflicts + held:
        assert served.posts(c) == 0 and served.lms_norm(c) == before[c]
        assert served.task_of(c).state is S.needs_approval
    assert all("comment" not in b.body for b in served.sandbox.runtime.score_bodies)
    assert tally.sends == len(sent) and tally.outcomes["verified"] == len(sent)
    assert tally.outcomes["held:platform_keeps_grade"] == len(held)

    again = served.resync()
    assert again.sends == 0 and again.claimed == 0
    assert all(served.posts(c) == 1 for c in sent)


def test_conflict_is_fixed_only_after_approval_and_records_who(served):
    conflicts = [c for c in served.cells if c.category == "manual_grade_conflict"]
    assert {c.platform.split("-")[0] for c in conflicts} == {"canvas", "moodle"}
    served.resync()
    assert all(served.posts(c) == 0 for c in conflicts)

    ids = [f.id for f in _findings(served) if f.category is m.FindingCategory.manual_grade_conflict]
    result = approve(served.database_url, "ana.lopez", ids)
    assert sorted(result.approved) == sorted(served.task_of(c).id for c in conflicts) and not result.problems
    served.resync()
    for c in conflicts:
        t = served.task_of(c)
        assert t.approved_by == "ana.lopez" and t.approved_at is not None and served.posts(c) == 1
        if c.platform.startswith("canvas"):
            assert t.state is S.verified
            assert served.lms_norm(c) == pytest.approx(c.normalised, abs=TOL)
        else:
            # Moodle answers 200 but a teacher override keeps the final grade (§4.3, §10): not verified,
            # and failed at once with what the platform shows — not re-checked and re-sent.
            assert (t.state, t.last_outcome) == (S.failed, "failed:accepted_not_shown"), t.last_response
            assert "accepted the score but shows" in t.last_response
    moodle = next(c for c in conflicts if c.platform.startswith("moodle"))
    assert served.resync().sends == 0 and served.posts(moodle) == 1


def test_unpublished_item_makes_the_task_wait_and_the_finding_item_not_active(served):
    cell = served.cell("missing_in_lms", "canvas")
    served.sandbox.control.set_published(cell.platform, cell.context_id, cell.item_id, False)
    tally = served.resync()
    t = served.task_of(cell)
    assert t.state is S.pending and t.item_blocked_at is not None
    assert t.last_status == 422 and "unpublished" in t.last_response
    assert tally.outcomes["refused:item_inactive"] == 1
    cats = {(f.category.value, f.resource_link_id, f.lms_user_id) for f in _findings(served)}
    assert ("item_not_active", cell.resource_link_id, None) in cats
    assert ("missing_in_lms", cell.resource_link_id, cell.lms_user_id) not in cats
    assert served.resync().sends == 1                     # the run's one probe, refused again
    served.sandbox.control.set_published(cell.platform, cell.context_id, cell.item_id, True)
    served.resync()
    t = served.task_of(cell)
    assert (t.state, t.item_blocked_at) == (S.verified, None) and served.posts(cell) == 3


def test_learner_who_is_no_student_any_more_becomes_not_learner(served):
    cell = served.cell("missing_in_lms", "moodle")
    served.sandbox.control.set_member(cell.platform, cell.context_id, cell.lms_user_id,
                                      roles=["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"])
    served.resync()
    t = served.task_of(cell)
    assert (t.state, t.category, t.last_status) == (S.refused, m.FindingCategory.not_learner, 400)
    f = next(f for f in _findings(served) if f.lms_user_id == cell.lms_user_id)
    assert f.category is m.FindingCategory.not_learner and f.identity.startswith("not_learner|")
    assert f.evidence["resync"]["refused_status"] == 400


def test_canvas_visible_manual_grade_is_held_then_an_approved_supersede_wins(served):
    cell = served.cell("score_mismatch", "canvas")
    # An instructor regrades the cell (the Lti::Result row shows it, without a scorer: §3.2).
    served.sandbox.control.set_manual_grade(cell.platform, cell.context_id, cell.item_id, cell.lms_user_id,
                                            1.0, scorer=None).stored_at = m.utcnow() + timedelta(hours=1)
    manual = served.lms_norm(cell)
    served.resync()
    t = served.task_of(cell)
    assert (t.state, t.last_outcome) == (S.needs_approval, "held:platform_keeps_grade")
    assert served.posts(cell) == 0 and served.lms_norm(cell) == manual
    assert served.resync().sends == 0                 # untouched until approved
    finding = next(f for f in _findings(served) if f.lms_user_id == cell.lms_user_id)
    assert approve(served.database_url, "lee", [finding.id]).approved == [t.id]
    served.resync()
    t = served.task_of(cell)
    # stale (the edit is stored an hour ahead; Canvas quotes it), then once more just after it: lands.
    assert t.state is S.verified and served.posts(cell) == 2, t.last_response
    assert served.lms_norm(cell) == pytest.approx(cell.normalised, abs=TOL)
    bodies = [b.body for b in served.sandbox.runtime.score_bodies if b.body["userId"] == cell.lms_user_id]
    assert [b[CANVAS_EXT]["prioritize_non_tool_grade"] for b in bodies] == [False, False]    # approved


def test_moodle_manual_grade_after_our_timestamp_is_stale_then_approved_supersede_is_ignored(served):
    cell = served.cell("missing_in_lms", "moodle")
    rec = served.sandbox.control.set_manual_grade(cell.platform, cell.context_id, cell.item_id, cell.lms_user_id,
                                                  1.0, scorer=None)
    rec.stored_at = m.utcnow() + timedelta(hours=1)
    manual = served.lms_norm(cell)
    served.resync()
    t = served.task_of(cell)
    assert (t.state, t.category, t.last_status) == (S.needs_approval, m.FindingCategory.manual_grade_conflict, 409)
    assert served.lms_norm(cell) == manual and served.posts(cell) == 1
    finding = next(f for f in _findings(served) if f.lms_user_id == cell.lms_user_id)
    assert finding.category is m.FindingCategory.manual_grade_conflict
    assert served.resync().sends == 0
    assert approve(served.database_url, "lee", [finding.id]).approved == [t.id]
    served.resync()
    t = served.task_of(cell)
    # The supersede beat the stored time (no 409) but Moodle keeps a teacher's override (§4.3, §10).
    assert served.posts(cell) == 2 and t.last_status is None
    assert (t.state, t.last_outcome) == (S.failed, "failed:accepted_not_shown"), t.last_response


def test_concluded_course_makes_the_course_unverified_and_stops_its_sends(served):
    cell = served.cell("score_mismatch", "canvas")
    served.sandbox.control.conclude_course(cell.platform, cell.context_id)
    tally = served.resync()
    assert (cell.platform, cell.context_id) in tally.unverified_courses
    t = served.task_of(cell)
    assert t.state is S.pending and t.next_attempt_at is not None and served.posts(cell) == 0
    with m.session_scope(m.make_engine(served.database_url)) as s:
        row = s.exec(select(m.CourseAudit).where(m.CourseAudit.run_id == tally.run_id)).one()
    assert (row.context_id, row.status) == (cell.context_id, "unverified")


def test_crash_between_send_and_record_does_not_send_twice(served, monkeypatch):
    cell = served.cell("missing_in_lms", "moodle")
    monkeypatch.setenv(CRASH_ENV, "raise")
    with pytest.raises(InjectedCrash):
        served.resync(limit=1, platforms=[cell.platform])
    monkeypatch.delenv(CRASH_ENV)
    crashed = next(t for t in served.tasks() if t.state is S.claimed)
    assert crashed.attempts == 1
    # the same process (same worker id) comes back: its lease must be taken over explicitly
    tally = served.resync(reclaim_after_s=0)
    t = next(t for t in served.tasks() if t.id == crashed.id)
    assert t.state is S.verified and t.attempts == 1
    assert tally.outcomes["verified_on_recheck"] == 1
    total_posts = sum(served.posts(c) for c in served.cells)
    assert total_posts == sum(1 for c in served.cells if c.category == "missing_in_lms"
                              or (c.category == "score_mismatch" and not c.platform.startswith("canvas")))
    with m.session_scope(m.make_engine(served.database_url)) as s:
        attempt = s.exec(select(m.ResyncAttempt).where(m.ResyncAttempt.task_id == crashed.id)).one()
    assert attempt.outcome == "landed"
