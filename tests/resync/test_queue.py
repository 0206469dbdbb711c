"""queue_from_findings: one open task per cell, updated by later audits, cancelled when the gap goes."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

import models as m
from gradesync.diagnosis.actions import ACTIONS
from gradesync.findings import identity_of
from gradesync.resync.queue import queue_from_findings
from tests.resync.factories import COMPLETED, finding, new_run

S = m.ResyncState
COURSE = [("canvas-main", "c1")]


def _tasks(s) -> list[m.ResyncTask]:
    return list(s.exec(select(m.ResyncTask).order_by(m.ResyncTask.id)))


def test_missing_and_mismatch_are_pending_conflict_needs_approval(migrated_db_url):
    with m.session_scope(m.make_engine(migrated_db_url)) as s:
        run = new_run(s, COURSE)
        fs = [finding(s, run, "missing_in_lms", user="u1", evidence={"completed_at": COMPLETED.isoformat()}),
              finding(s, run, "score_mismatch", user="u2", lms=3.0),
              finding(s, run, "manual_grade_conflict", user="u3", lms=5.0),
              finding(s, run, "not_learner", user="u4")]
        counts = queue_from_findings(s, run, fs)
        tasks = _tasks(s)
    assert (counts.created, counts.needs_approval, counts.cancelled) == (3, 1, 0)
    by_user = {t.lms_user_id: t for t in tasks}
    assert set(by_user) == {"u1", "u2", "u3"}
    assert by_user["u1"].state is S.pending and by_user["u2"].state is S.pending
    assert by_user["u3"].state is S.needs_approval
    t = by_user["u1"]
    assert (t.score_given, t.score_maximum, t.completed_at) == (8.0, 10.0, COMPLETED)
    assert t.identity == fs[0].identity and t.created_run_id == run == t.updated_run_id


def test_completed_at_comes_from_the_tool_completion_when_evidence_lacks_it(migrated_db_url):
    with m.session_scope(m.make_engine(migrated_db_url)) as s:
        s.add(m.Platform(name="canvas-main", vendor="canvas", issuer="https://x", client_id="c"))
        s.add(m.Account(account_id="acc-u1", email="u1@x", name="U1", origin="lti"))
        s.flush()
        s.add(m.Completion(account_id="acc-u1", activity_id="act1", score_given=8, score_maximum=10,
                           completed_at=COMPLETED, platform="canvas-main", context_id="c1"))
        run = new_run(s, COURSE)
        queue_from_findings(s, run, [finding(s, run, "missing_in_lms")])
        assert _tasks(s)[0].completed_at == COMPLETED


def test_a_later_audit_updates_the_open_task_instead_of_adding_one(migrated_db_url):
    with m.session_scope(m.make_engine(migrated_db_url)) as s:
        run1 = new_run(s, COURSE)
        queue_from_findings(s, run1, [finding(s, run1, "missing_in_lms", tool=8.0)])
        run2 = new_run(s, COURSE)
        f2 = finding(s, run2, "score_mismatch", tool=9.0, lms=2.0)
        counts = queue_from_findings(s, run2, [f2])
        tasks = _tasks(s)
        t = tasks[0]
        assert len(tasks) == 1 and counts.updated == 1 and counts.created == 0
        assert (t.category, t.score_given, t.identity) == (m.FindingCategory.score_mismatch, 9.0, f2.identity)
        assert (t.created_run_id, t.updated_run_id) == (run1, run2)
        run3 = new_run(s, COURSE)
        again = queue_from_findings(s, run3, [finding(s, run3, "score_mismatch", tool=9.0, lms=2.0)])
    assert (again.unchanged, again.updated, again.created) == (1, 0, 0)


def test_conflict_moves_a_pending_task_to_needs_approval_and_keeps_an_approval(migrated_db_url):
    with m.session_scope(m.make_engine(migrated_db_url)) as s:
        run1 = new_run(s, COURSE)
        queue_from_findings(s, run1, [finding(s, run1, "missing_in_lms", user="u1"),
                                      finding(s, run1, "manual_grade_conflict", user="u2", lms=1.0)])
        t1, t2 = _tasks(s)
        t2.state, t2.approved_by, t2.approved_at = S.approved, "ana", m.utcnow()
        run2 = new_run(s, COURSE)
        queue_from_findings(s, run2, [finding(s, run2, "manual_grade_conflict", user="u1", lms=1.0),
                                      finding(s, run2, "manual_grade_conflict", user="u2", lms=1.0)])
        assert (t1.state, t2.state) == (S.needs_approval, S.approved)


def test_gap_gone_in_an_audited_course_cancels_but_unverified_course_keeps_it(migrated_db_url):
    with m.session_scope(m.make_engine(migrated_db_url)) as s:
        run1 = new_run(s, [("canvas-main", "c1"), ("canvas-main", "c2")])
        queue_from_findings(s, run1, [finding(s, run1, "missing_in_lms", user="u1", context_id="c1"),
                                      finding(s, run1, "missing_in_lms", user="u2", context_id="c2",
                                              line_item_id="https://lms.test/li/2"),
                                      finding(s, run1, "missing_in_lms", user="u3", context_id="c1")])
        t1, t2, t3 = _tasks(s)
        # run 2: c1 audited (u1's gap closed, u3 now has another cause), c2 could not be audited
        run2 = new_run(s, [("canvas-main", "c1")], unverified=[("canvas-main", "c2")])
        counts = queue_from_findings(s, run2, [finding(s, run2, "not_learner", user="u3", context_id="c1")])
        assert counts.cancelled == 2
        assert (t1.state, t2.state, t3.state) == (S.cancelled, S.pending, S.cancelled)
        assert "audit run" in t1.last_response
        # a closed task is history: the next gap for the same cell opens a new task
        run3 = new_run(s, [("canvas-main", "c1")])
        queue_from_findings(s, run3, [finding(s, run3, "missing_in_lms", user="u1", context_id="c1")])
        assert [t.state for t in _tasks(s) if t.lms_user_id == "u1"] == [S.cancelled, S.pending]


def test_a_claimed_task_is_left_to_its_worker(migrated_db_url):
    with m.session_scope(m.make_engine(migrated_db_url)) as s:
        run1 = new_run(s, COURSE)
        queue_from_findings(s, run1, [finding(s, run1, "missing_in_lms")])
        (t,) = _tasks(s)
        t.state, t.claimed_by = S.claimed, "w1"
        run2 = new_run(s, COURSE)
        queue_from_findings(s, run2, [finding(s, run2, "manual_grade_conflict", lms=2.0)])
        assert (t.state, t.updated_run_id, t.category) == (S.claimed, run2, m.FindingCategory.missing_in_lms)
        run3 = new_run(s, COURSE)
        assert queue_from_findings(s, run3, []).cancelled == 0 and t.state is S.claimed


def test_unsendable_findings_are_skipped(migrated_db_url):
    with m.session_scope(m.make_engine(migrated_db_url)) as s:
        run = new_run(s, COURSE)
        counts = queue_from_findings(s, run, [finding(s, run, "missing_in_lms", line_item_id=None)])
        assert counts.skipped == 1 and _tasks(s) == []


def test_the_database_refuses_a_second_open_task_for_a_cell(migrated_db_url):
    with pytest.raises(IntegrityError):
        with m.session_scope(m.make_engine(migrated_db_url)) as s:
            for _ in range(2):
                s.add(m.ResyncTask(identity="x", platform="p", context_id="c", line_item_id="li", lms_user_id="u",
                                   score_given=1, score_maximum=1, category=m.FindingCategory.missing_in_lms))
                s.flush()


# ---- issue 10 -------------------------------------------------------------------------------------
def _refused(t: m.ResyncTask, *, approved: bool) -> None:
    t.state, t.last_outcome = S.failed, "failed:accepted_not_shown"
    t.last_response = "accepted (2xx); the platform accepted the score but shows 3/10"
    if approved:
        t.approved_by, t.approved_at = "ana", m.utcnow()


@pytest.mark.parametrize("approved", [False, True])
def test_a_send_the_platform_accepted_and_ignored_is_not_queued_again(migrated_db_url, approved):
    with m.session_scope(m.make_engine(migrated_db_url)) as s:
        run1 = new_run(s, COURSE)
        queue_from_findings(s, run1, [finding(s, run1, "missing_in_lms", tool=8.0)])
        (t,) = _tasks(s)
        _refused(t, approved=approved)
        run2 = new_run(s, COURSE)
        f = finding(s, run2, "manual_grade_conflict", tool=8.0, lms=3.0)
        counts = queue_from_findings(s, run2, [f])
        assert (counts.kept_refused, counts.created, counts.needs_approval) == (1, 0, 0)
        assert [x.state for x in _tasks(s)] == [S.failed]
        said = f.evidence["resync"]
        assert (said["task_id"], said["outcome"], said["supersede_tried"]) == (t.id, "failed:accepted_not_shown", approved)
        assert "not queued again" in said["note"]
        # A new score (a retake) is a new send: queued as usual.
        run3 = new_run(s, COURSE)
        counts = queue_from_findings(s, run3, [finding(s, run3, "manual_grade_conflict", tool=9.0, lms=3.0)])
        assert counts.created == 1 and _tasks(s)[-1].state is S.needs_approval


def test_a_grade_the_platform_keeps_stays_waiting_for_approval(migrated_db_url):
    with m.session_scope(m.make_engine(migrated_db_url)) as s:
        run1 = new_run(s, COURSE)
        queue_from_findings(s, run1, [finding(s, run1, "score_mismatch", lms=3.0)])
        (t,) = _tasks(s)
        t.state, t.last_outcome = S.needs_approval, "held:platform_keeps_grade"
        run2 = new_run(s, COURSE)
        counts = queue_from_findings(s, run2, [finding(s, run2, "score_mismatch", lms=3.0)])
        assert t.state is S.needs_approval and counts.needs_approval == 1


def _item_finding(s, run_id: int, **evidence) -> m.Finding:
    row = m.Finding(run_id=run_id, identity=identity_of("item_not_active", "canvas-main", "c1", "rl1"),
                    category=m.FindingCategory.item_not_active, level="item", platform="canvas-main",
                    context_id="c1", resource_link_id="rl1", activity_id="act1", line_item_id="https://lms.test/li/1",
                    evidence=evidence, action=ACTIONS["item_not_active"])
    s.add(row)
    s.flush()
    return row


def test_tasks_of_an_inactive_item_wait_instead_of_being_cancelled(migrated_db_url):
    with m.session_scope(m.make_engine(migrated_db_url)) as s:
        run1 = new_run(s, COURSE)
        queue_from_findings(s, run1, [finding(s, run1, "missing_in_lms", user="u1"),
                                      finding(s, run1, "missing_in_lms", user="u2", line_item_id="https://lms.test/li/2")])
        t1, t2 = _tasks(s)
        run2 = new_run(s, COURSE)                       # the item's learner findings give way to the item's
        counts = queue_from_findings(s, run2, [_item_finding(s, run2)])
        assert (t1.state, t2.state) == (S.pending, S.cancelled) and counts.waiting == 1
        assert t1.item_blocked_at is not None and t1.updated_run_id == run2
        run3 = new_run(s, COURSE)                       # the item is fine and the gap gone
        queue_from_findings(s, run3, [])
        assert t1.state is S.cancelled


def test_blocked_gaps_an_item_finding_lists_become_waiting_tasks(migrated_db_url):
    with m.session_scope(m.make_engine(migrated_db_url)) as s:
        run = new_run(s, COURSE)
        gaps = [{"lms_user_id": "u1", "account_id": "acc-u1", "tool_score": 7, "tool_maximum": 10,
                 "completed_at": COMPLETED.isoformat()},
                {"lms_user_id": "u2", "tool_score": 5, "tool_maximum": 10, "category": "score_mismatch"}]
        counts = queue_from_findings(s, run, [_item_finding(s, run, heuristic=True, blocked_gaps=gaps)])
        tasks = _tasks(s)
        assert counts.created == 2 and all(t.item_blocked_at is not None and t.state is S.pending for t in tasks)
        assert [(t.lms_user_id, t.category.value, t.score_given, t.completed_at) for t in tasks] == [
            ("u1", "missing_in_lms", 7.0, COMPLETED), ("u2", "score_mismatch", 5.0, None)]
        assert len(s.exec(select(m.Finding).where(m.Finding.run_id == run)).all()) == 1   # none stored
