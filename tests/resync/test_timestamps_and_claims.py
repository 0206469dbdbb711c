"""Fresh timestamps, atomic claims, dead-claim release and the retry/refusal table."""
from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

from sqlmodel import select

import models as m
from gradesync.resync.claims import claim_probes, claim_tasks, release_dead_claims, worker_id
from gradesync.resync.landing import landing_rule
from gradesync.resync.sender import refusal_change
from gradesync.resync.store import ClaimedTask
from gradesync.resync.timestamps import fresh_timestamp, own_send, same_instant, stored_time_from_refusal
from lti_client.errors import LtiError
from lti_client.types import ErrorKind, LtiErrorInfo, Result

S = m.ResyncState
NOW = datetime(2025, 5, 1, 12, 0, 0, 300_000, tzinfo=timezone.utc)


# ---- timestamps ---------------------------------------------------------------------------------
def test_timestamp_is_now_and_strictly_after_the_last_one_sent():
    assert fresh_timestamp(NOW, "canvas") == NOW
    assert fresh_timestamp(NOW, "canvas", last_sent=NOW) == NOW + timedelta(milliseconds=1)
    later = NOW + timedelta(seconds=5)
    assert fresh_timestamp(NOW, "canvas", last_sent=later) == later + timedelta(milliseconds=1)


def test_moodle_needs_a_later_whole_second_than_what_it_stored():
    # §4.3: timemodified >= strtotime(timestamp) at whole seconds → 409; same second is refused.
    stored = NOW.replace(microsecond=0)                               # stored in this very second
    ts = fresh_timestamp(NOW, "moodle", stored_at=stored)
    assert ts == stored + timedelta(seconds=1)
    assert fresh_timestamp(NOW, "moodle", last_sent=NOW) == stored + timedelta(seconds=1)
    assert fresh_timestamp(NOW, "canvas", stored_at=stored) == NOW   # Canvas: equal is accepted, now is later
    assert fresh_timestamp(NOW, "moodle", stored_at=stored - timedelta(seconds=3)) == NOW


def test_a_later_edit_is_beaten_only_by_an_approved_supersede():
    edit = NOW + timedelta(hours=1)
    assert fresh_timestamp(NOW, "moodle", stored_at=edit) == NOW
    assert fresh_timestamp(NOW, "moodle", stored_at=edit, supersede=True) == edit.replace(microsecond=0) + timedelta(seconds=1)
    assert fresh_timestamp(NOW, "canvas", stored_at=edit, supersede=True) == edit + timedelta(milliseconds=1)


def test_sub_millisecond_times_round_up_so_the_sent_value_keeps_the_step():
    ts = fresh_timestamp(NOW + timedelta(microseconds=1), "canvas", last_sent=NOW)
    assert ts.microsecond % 1000 == 0 and ts > NOW


def test_canvas_stale_refusal_quotes_the_stored_time():
    text = ('400: Provided timestamp of 2025-05-01T12:00:00.300Z before last updated timestamp of '
            '2025-05-01T13:00:00.123Z')
    assert stored_time_from_refusal(text) == datetime(2025, 5, 1, 13, 0, 0, 123_000, tzinfo=timezone.utc)
    assert stored_time_from_refusal("Refusing score with an earlier timestamp") is None


# ---- refusals and retries ------------------------------------------------------------------------
def _task(**kw) -> ClaimedTask:
    base = dict(id=1, platform="p", context_id="c", line_item_id="li", lms_user_id="u", score_given=1.0,
                score_maximum=1.0, completed_at=None, category="missing_in_lms", approved=False, supersede=False,
                attempts=0, last_timestamp_sent=None, last_response=None, unsettled_attempt=None)
    return ClaimedTask(**{**base, **kw})


def _err(kind: ErrorKind, status: int | None = 500) -> LtiError:
    return LtiError(LtiErrorInfo(kind, status, None, "boom", "https://lms/x"))


def test_throttled_and_transient_back_off_then_fail_at_the_cap():
    for kind in (ErrorKind.throttled, ErrorKind.transient):
        c = refusal_change(_task(), _err(kind, 429), 1, None, attempts=1, max_attempts=3, now=NOW)
        assert c.state is S.pending and c.next_attempt_at == NOW + timedelta(minutes=1)
        c = refusal_change(_task(), _err(kind), 2, None, attempts=2, max_attempts=3, now=NOW)
        assert c.next_attempt_at == NOW + timedelta(minutes=2)
        c = refusal_change(_task(), _err(kind), 3, None, attempts=3, max_attempts=3, now=NOW)
        assert c.state is S.failed and c.response and c.status is not None
    approved = refusal_change(_task(approved=True), _err(ErrorKind.transient), 1, None, 1, 3, NOW)
    assert approved.state is S.approved


def test_refusals_reclassify():
    t = _task()
    assert refusal_change(t, _err(ErrorKind.item_inactive, 422), 1, None, 1, 5, NOW).refuse_item
    nl = refusal_change(t, _err(ErrorKind.not_learner, 422), 1, None, 1, 5, NOW)
    assert (nl.state, nl.reclassify_to) == (S.refused, "not_learner")
    st = refusal_change(t, _err(ErrorKind.stale_timestamp, 409), 1, None, 1, 5, NOW)
    assert (st.state, st.reclassify_to) == (S.needs_approval, "manual_grade_conflict")
    sup = refusal_change(_task(approved=True, supersede=True), _err(ErrorKind.stale_timestamp, 400), 1, None, 1, 5, NOW)
    assert sup.state is S.approved and sup.reclassify_to is None
    cu = refusal_change(t, _err(ErrorKind.course_unreachable, 404), 1, None, 1, 5, NOW)
    assert cu.state is S.pending and cu.outcome.endswith("course_unreachable")


# ---- claims --------------------------------------------------------------------------------------
def _add_tasks(url: str, n: int, tag: str = "u", **kw) -> None:
    with m.session_scope(m.make_engine(url)) as s:
        for i in range(n):
            s.add(m.ResyncTask(identity=f"{tag}{i}", platform="p", context_id="c", line_item_id="li", lms_user_id=f"{tag}{i}",
                               score_given=1, score_maximum=1, category=m.FindingCategory.missing_in_lms, **kw))


def test_concurrent_claimers_never_get_the_same_task(migrated_db_url):
    _add_tasks(migrated_db_url, 60)
    engine = m.make_engine(migrated_db_url)
    got: dict[str, list[int]] = {}
    start = threading.Barrier(4)

    def claimer(name: str) -> None:
        start.wait()
        mine: list[int] = []
        while True:
            ids = claim_tasks(engine, name, ["p"], 7, due_before=m.utcnow())
            if not ids:
                break
            assert len(ids) <= 7
            mine += ids
        got[name] = mine

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    all_ids = [i for ids in got.values() for i in ids]
    assert len(all_ids) == 60 and len(set(all_ids)) == 60
    with m.session_scope(engine) as s:
        owners = {t.id: t.claimed_by for t in s.exec(select(m.ResyncTask))}
    assert all(owners[i] == name for name, ids in got.items() for i in ids)


def test_a_claim_takes_at_most_limit_tasks(migrated_db_url):
    _add_tasks(migrated_db_url, 5)
    engine = m.make_engine(migrated_db_url)
    assert len(claim_tasks(engine, "w", ["p"], 1, due_before=m.utcnow())) == 1
    with m.session_scope(engine) as s:
        assert len(s.exec(select(m.ResyncTask).where(m.ResyncTask.state == S.claimed)).all()) == 1


def test_claim_skips_tasks_not_yet_due_and_takes_over_expired_leases(migrated_db_url):
    _add_tasks(migrated_db_url, 1, next_attempt_at=m.utcnow() + timedelta(minutes=5))
    _add_tasks(migrated_db_url, 1, "waiting", state=S.needs_approval)
    engine = m.make_engine(migrated_db_url)
    assert claim_tasks(engine, "w", ["p"], 10, due_before=m.utcnow()) == []
    with m.session_scope(engine) as s:
        t = s.exec(select(m.ResyncTask).where(m.ResyncTask.state == S.pending)).one()
        t.state, t.claimed_by, t.claimed_at = S.claimed, "other@far#1", m.utcnow() - timedelta(minutes=30)
        t.next_attempt_at = None
    assert claim_tasks(engine, "w", ["p"], 10, due_before=m.utcnow(), lease=timedelta(hours=1)) == []
    assert len(claim_tasks(engine, "w", ["p"], 10, due_before=m.utcnow(), lease=timedelta(minutes=10))) == 1


def test_claims_of_a_dead_local_process_are_released(migrated_db_url):
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = worker_id("gone").rsplit("#", 1)[0] + "#" + proc.stdout.strip()
    _add_tasks(migrated_db_url, 1, "a", state=S.claimed, claimed_by=dead, claimed_at=m.utcnow())
    _add_tasks(migrated_db_url, 1, "b", state=S.claimed, claimed_by=dead, claimed_at=m.utcnow())
    with m.session_scope(m.make_engine(migrated_db_url)) as s:
        live = s.exec(select(m.ResyncTask)).all()[1]
        live.claimed_by = worker_id("me")                    # this very process: alive
    assert release_dead_claims(m.make_engine(migrated_db_url), ["p"]) == 1
    with m.session_scope(m.make_engine(migrated_db_url)) as s:
        states = sorted(t.state.value for t in s.exec(select(m.ResyncTask)))
    assert states == ["claimed", "pending"]


# ---- issue 10: own sends, probes, landing rules ------------------------------------------------------
def test_own_sends_are_recognised_at_the_platform_resolution():
    sent = (NOW,)
    assert own_send(NOW.replace(microsecond=0), sent, "moodle")            # Moodle keeps whole seconds
    assert not own_send(NOW.replace(microsecond=0), sent, "canvas")        # Canvas keeps milliseconds
    assert own_send(NOW + timedelta(microseconds=400), sent, "canvas")
    assert not own_send(NOW + timedelta(seconds=1), sent, "moodle") and not own_send(None, sent, "moodle")


def test_fresh_timestamp_always_beats_the_last_send_at_the_platform_resolution():
    for vendor in ("moodle", "canvas", "d2l"):
        for offset_ms in (-1500, -999, -1, 0, 1, 250, 999, 1000, 4000):
            last = NOW + timedelta(milliseconds=offset_ms)
            ts = fresh_timestamp(NOW, vendor, last_sent=last)
            assert ts > last and not same_instant(ts, last, vendor), (vendor, offset_ms)


def test_a_stale_refusal_against_our_own_send_is_retried_not_a_manual_grade():
    c = refusal_change(_task(), _err(ErrorKind.stale_timestamp, 409), 1, None, 1, 5, NOW, own_stale=True)
    assert (c.state, c.reclassify_to, c.outcome) == (S.pending, None, "retry:own_send_stale")
    assert refusal_change(_task(), _err(ErrorKind.stale_timestamp, 409), 1, None, 1, 5, NOW).reclassify_to \
        == "manual_grade_conflict"


def test_an_inactive_item_makes_the_task_wait_not_close():
    c = refusal_change(_task(approved=True), _err(ErrorKind.item_inactive, 422), 1, None, 1, 5, NOW)
    assert c.refuse_item and c.state is S.approved


def test_probes_take_the_oldest_waiting_task_per_item_and_plain_claims_skip_waiting_tasks(migrated_db_url):
    blocked = m.utcnow()
    with m.session_scope(m.make_engine(migrated_db_url)) as s:
        for i, (item, at) in enumerate([("li1", blocked), ("li1", blocked), ("li2", blocked), ("li3", None)]):
            s.add(m.ResyncTask(identity=f"u{i}", platform="p", context_id="c", line_item_id=item, lms_user_id=f"u{i}",
                               score_given=1, score_maximum=1, category=m.FindingCategory.missing_in_lms,
                               item_blocked_at=at))
    engine = m.make_engine(migrated_db_url)
    with m.session_scope(engine) as s:
        ids = {t.lms_user_id: t.id for t in s.exec(select(m.ResyncTask))}
    assert claim_tasks(engine, "w", ["p"], 10, due_before=m.utcnow()) == [ids["u3"]]
    assert claim_probes(engine, "w", ["p"], 10) == [ids["u0"], ids["u2"]]
    assert claim_probes(engine, "w", ["p"], 10) == []          # claimed: no second probe of an item


def test_canvas_landing_tells_a_kept_teacher_grade_from_the_tool_grade():
    rule = landing_rule("canvas")
    assert rule.sent_values(8, 10, 10) == (16, 20) and rule.sent_values(8, 10, 100) == (8, 10)
    sent = rule.sent_values(8, 10, 10)
    tool = Result("r", "li", "u", 16.0, 20.0)                 # grader < 0: raw, as sent
    kept = Result("r", "li", "u", 32.0, 20.0)                 # a person's grade kept: 16 × 20 / 10
    assert rule.judge(tool, 0.8, sent, 10).verdict == "shown"
    judged = rule.judge(kept, 0.8, sent, 10)
    assert judged.verdict == "kept_by_person" and "Canvas kept a grade entered by a person" in judged.note
    assert rule.judge(Result("r", "li", "u", 0.0, 20.0), 0.0, (0, 20), 10).verdict == "unconfirmable"
    assert rule.judge(tool, 0.8, sent, None).verdict == "unconfirmable"
    item = "https://canvas.test/api/lti/courses/7/line_items/12"
    assert rule.container_of(item) == "https://canvas.test/api/lti/courses/7/line_items"
    assert rule.container_of("https://canvas.test/api/lti/courses/7") is None
    assert landing_rule("moodle").container_of(item) is None
    capped = landing_rule("d2l").judge(Result("r", "li", "u", 10.0, 10.0), 1.2, (12, 10), None)
    assert capped.verdict == "other_value" and "10/10" in capped.note
