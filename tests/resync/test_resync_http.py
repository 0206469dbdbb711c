"""The resync over real HTTP against the sandbox LMS (canvas and moodle profiles of a tiny world)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

import models as m
from gradesync.resync.plan import approve
from gradesync.resync.sender import CRASH_ENV, InjectedCrash
from tests.resync.world_helpers import served_world

S = m.ResyncState
TOL = 0.005


@pytest.fixture
def served(tmp_path, migrated_db_url):
    with served_world(tmp_path, migrated_db_url) as world:
        yield world


def _findings(served, run_id=None) -> list[m.Finding]:
    with m.session_scope(m.make_engine(served.database_url)) as s:
        return list(s.exec(select(m.Finding).where(m.Finding.run_id == (run_id or served.run_id))))


def test_resync_fixes_every_missing_and_mismatch_and_leaves_conflicts_alone(served):
    fixable = [c for c in served.cells if c.category != "manual_grade_conflict"]
    conflicts = [c for c in served.cells if c.category == "manual_grade_conflict"]
    assert {c.platform.split("-")[0] for c in fixable} == {"canvas", "moodle"}
    before = {c: served.lms_norm(c) for c in conflicts}

    tally = served.resync()

    for c in fixable:
        assert served.lms_norm(c) == pytest.approx(c.normalised, abs=TOL), c
        assert served.posts(c) == 1
        t = served.task_of(c)
        assert t.state is S.verified and t.attempts == 1
        rec = served.world.state.registrations[c.platform].courses[c.context_id].line_item(c.item_id).results[c.lms_user_id]
        assert rec.comment == f"Resynced by gradesync (task {t.id})"
        # a fresh timestamp, not the completion time (2025-01-10): the platform stored it
        assert rec.stored_at > m.utcnow() - timedelta(minutes=5)
    for c in conflicts:
        assert served.posts(c) == 0 and served.lms_norm(c) == before[c]
        assert served.task_of(c).state is S.needs_approval
    assert tally.sends == len(fixable) and tally.outcomes["verified"] == len(fixable)

    again = served.resync()
    assert again.sends == 0 and again.claimed == 0
    assert all(served.posts(c) == 1 for c in fixable)


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
            # Moodle answers 200 but a teacher override keeps the final grade (§4.3): not verified.
            assert t.state is S.sent and "still shows" not in t.last_response
    served.resync()          # the re-check: Moodle still shows the override → failed, no second POST
    moodle = next(c for c in conflicts if c.platform.startswith("moodle"))
    t = served.task_of(moodle)
    assert t.state is S.failed and "override" in t.last_response and served.posts(moodle) == 1


def test_unpublished_item_refuses_and_the_finding_becomes_item_not_active(served):
    cell = served.cell("score_mismatch", "canvas")
    served.sandbox.control.set_published(cell.platform, cell.context_id, cell.item_id, False)
    tally = served.resync()
    t = served.task_of(cell)
    assert t.state is S.refused and t.last_status == 422 and "unpublished" in t.last_response
    assert tally.outcomes["refused:item_inactive"] == 1
    cats = {(f.category.value, f.resource_link_id, f.lms_user_id) for f in _findings(served)}
    assert ("item_not_active", cell.resource_link_id, None) in cats
    assert ("score_mismatch", cell.resource_link_id, cell.lms_user_id) not in cats
    assert served.resync().sends == 0


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


@pytest.mark.parametrize("profile", ["canvas", "moodle"])
def test_manual_grade_after_our_timestamp_is_stale_then_approved_supersede_wins(served, profile):
    category = "score_mismatch" if profile == "canvas" else "missing_in_lms"
    cell = served.cell(category, profile)
    # An instructor grades the cell at a time later than our send (stored an hour ahead), without a
    # scoringUserId: only the platform's stale check can tell.
    rec = served.sandbox.control.set_manual_grade(cell.platform, cell.context_id, cell.item_id, cell.lms_user_id,
                                                  1.0, scorer=None)
    rec.stored_at = m.utcnow() + timedelta(hours=1)
    manual = served.lms_norm(cell)
    served.resync()
    t = served.task_of(cell)
    assert (t.state, t.category) == (S.needs_approval, m.FindingCategory.manual_grade_conflict)
    assert t.last_status == (400 if profile == "canvas" else 409)
    assert served.lms_norm(cell) == manual and served.posts(cell) == 1
    finding = next(f for f in _findings(served) if f.lms_user_id == cell.lms_user_id)
    assert finding.category is m.FindingCategory.manual_grade_conflict

    assert served.resync().sends == 0                 # untouched until approved
    assert approve(served.database_url, "lee", [finding.id]).approved == [t.id]
    served.resync()
    t = served.task_of(cell)
    assert served.posts(cell) == 2
    if profile == "canvas":
        assert t.state is S.verified, t.last_response
        assert served.lms_norm(cell) == pytest.approx(cell.normalised, abs=TOL)
    else:
        # The supersede beat the stored time (no 409) but Moodle keeps a teacher's override (§4.3).
        assert t.state is S.sent and t.last_status is None, t.last_response


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
        served.resync(limit=1)
    monkeypatch.delenv(CRASH_ENV)
    crashed = next(t for t in served.tasks() if t.state is S.claimed)
    assert crashed.attempts == 1
    # the same process (same worker id) comes back: its lease must be taken over explicitly
    tally = served.resync(reclaim_after_s=0)
    t = next(t for t in served.tasks() if t.id == crashed.id)
    assert t.state is S.verified and t.attempts == 1
    assert tally.outcomes["verified_on_recheck"] == 1
    total_posts = sum(served.posts(c) for c in served.cells)
    assert total_posts == sum(1 for c in served.cells if c.category != "manual_grade_conflict")
    with m.session_scope(m.make_engine(served.database_url)) as s:
        attempt = s.exec(select(m.ResyncAttempt).where(m.ResyncAttempt.task_id == crashed.id)).one()
    assert attempt.outcome == "landed"
