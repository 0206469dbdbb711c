"""The planted ground truth holds under docs/diagnosis-rules.md, checked by a small, independent
reading of the rules over the raw world (no gradesync code): every planted case comes out as exactly
its category, and every other expected grade is in sync — so a world has no accidental findings."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import pytest

from sandbox_lms.state import LEARNER, SCOPE_SCORE
from sandbox_lms.worlds import build_world
from sandbox_lms.worlds.answers import Outcome

BASE = "http://127.0.0.1:9"


def _ts(s: str) -> datetime:
    return datetime.fromisoformat(s)


def _visible_members(profile, course):
    # Canvas and Moodle NRPS list active enrolments only (lti-platform-behavior.md §5.2, §5.3).
    if profile in ("canvas", "moodle"):
        return {m.user_id: m for m in course.members if m.status == "Active"}
    return {m.user_id: m for m in course.members if m.status != "Deleted"}


def _visible_results(profile, item):
    # Canvas lists only cells the tool has posted to (§3.2); a null score is "no result".
    return {u: r for u, r in item.results.items()
            if r.result_score is not None and (profile != "canvas" or r.tool_posted)}


def _refused_inactive(profile, status, body):
    b = body.lower()
    return (profile == "canvas" and status == 422 and "unpublished" in b) or \
           (profile == "blackboard" and 400 <= status < 500 and "not available" in b)


def _refused_stale(profile, status, body):
    return (profile == "canvas" and status == 400 and "before last updated timestamp" in body) or \
           (profile == "moodle" and status == 409)


def oracle(world) -> dict[str, str | None]:
    """identity → account_id of every finding the rules give for this world."""
    rows = world.tool_records(BASE)
    regs = world.state.registrations
    email = {a["account_id"]: a["email"].lower() for a in rows["accounts"]}
    by_email = defaultdict(list)
    for a, e in email.items():
        by_email[e].append(a)
    ident = defaultdict(dict)                     # platform → lms_user_id → account
    for i in rows["identities"]:
        ident[i["platform"]][i["lms_user_id"]] = i["account_id"]
    comps = defaultdict(dict)                     # activity → account → completion row
    for c in rows["completions"]:
        comps[c["activity_id"]][c["account_id"]] = c
    pbs = defaultdict(list)
    for p in rows["passbacks"]:
        pbs[(p["platform"], p["context_id"], p["resource_link_id"], p["lms_user_id"])].append(p)
        pbs[(p["platform"], p["context_id"], p["resource_link_id"])].append(p)
    out: dict[str, str | None] = {}

    def emit(cat, plat, ctx, rl=None, user=None, account=None):
        out[f"{cat}|{plat}|{ctx}|{rl or ''}|{user or ''}"] = account

    for course_row in rows["courses"]:
        plat, ctx = course_row["platform"], course_row["context_id"]
        reg = regs[plat]
        course = reg.courses[ctx]
        if SCOPE_SCORE not in reg.granted_scopes:
            emit("grades_not_accepted", plat, ctx)
            continue
        if course.concluded or course.tool_removed:
            emit("course_unreachable", plat, ctx)
            continue
        members = _visible_members(reg.profile, course)
        items = [li for li in course.line_items if not li.deleted]
        starts, ends = _ts(course_row["starts_at"]), _ts(course_row["ends_at"])
        graded = [lk for lk in rows["links"] if lk["platform"] == plat and lk["context_id"] == ctx
                  and lk["graded"] == "true"]
        for lk in graded:
            rl, act = lk["resource_link_id"], lk["activity_id"]
            item = next((li for li in items if li.resource_link_id == rl), None)
            if item is None:
                emit("link_not_graded", plat, ctx, rl)
                continue
            # expected grades: (a) roster learners via any same-email account, (b) linked accounts
            # whose completion carries (P, C)
            expected: dict[str, tuple[str, dict]] = {}
            for uid, m in members.items():
                if LEARNER not in m.roles or uid not in ident[plat]:
                    continue
                acc = ident[plat][uid]
                if acc in comps[act]:
                    expected[uid] = (acc, comps[act][acc])
                    continue
                others = [a for a in by_email.get(email.get(acc, ""), []) if a != acc and a in comps[act]]
                if others:
                    best = max(others, key=lambda a: _ts(comps[act][a]["completed_at"]))
                    expected[uid] = (best, comps[act][best])
            for uid, acc in ident[plat].items():
                c = comps[act].get(acc)
                if c and c["platform"] == plat and c["context_id"] == ctx and uid not in expected:
                    expected[uid] = (acc, c)
            results = _visible_results(reg.profile, item)
            log = sorted(pbs.get((plat, ctx, rl), []), key=lambda p: _ts(p["timestamp"]))
            if log and _refused_inactive(reg.profile, int(log[-1]["status_code"]), log[-1]["response"]):
                emit("item_not_active", plat, ctx, rl)
                continue
            others_scored = any(_visible_results(reg.profile, li) for li in items if li is not item)
            if len(expected) >= 3 and not any(u in results for u in expected) and others_scored:
                emit("item_not_active", plat, ctx, rl)
                continue
            for uid, (acc, c) in expected.items():
                tool = float(c["score_given"]) / float(c["score_maximum"])
                res = results.get(uid)
                if res is not None and abs(res.result_score / (res.result_maximum or 1) - tool) <= 0.005:
                    continue
                m = members.get(uid)
                linked = ident[plat][uid]
                cell = sorted(pbs.get((plat, ctx, rl, uid), []), key=lambda p: _ts(p["timestamp"]))
                accepted = [p for p in cell if 200 <= int(p["status_code"]) < 300]
                at = _ts(c["completed_at"])
                if m is None or LEARNER not in m.roles or m.status != "Active":
                    cat = "not_learner"
                elif linked not in comps[act]:
                    cat = "duplicate_account"
                elif c["platform"] != plat or c["context_id"] != ctx:
                    cat = "launched_outside_course"
                elif at < starts or at > ends or (item.start_date_time and at < item.start_date_time) \
                        or (item.end_date_time and at > item.end_date_time):
                    cat = "outside_course_dates"
                elif (cell and _refused_stale(reg.profile, int(cell[-1]["status_code"]), cell[-1]["response"])) or (
                        res is not None and (
                            res.scoring_user_id is not None
                            or (accepted and abs(float(accepted[-1]["score_given"]) / float(accepted[-1]["score_maximum"])
                                                 - res.result_score / res.result_maximum) > 0.005)
                            or (accepted and int(res.stored_at.timestamp()) > int(_ts(accepted[-1]["timestamp"]).timestamp())))):
                    cat = "manual_grade_conflict"
                elif res is not None:
                    cat = "score_mismatch"
                else:
                    cat = "missing_in_lms"
                emit(cat, plat, ctx, rl, uid, acc)
    return out


@pytest.mark.parametrize("seed,size", [(1, "tiny"), (2, "tiny"), (7, "demo"), (8, "demo")])
def test_planted_ground_truth_is_exactly_what_the_rules_give(seed, size):
    world = build_world(seed, size)
    got = oracle(world)
    want = {f.identity: f.account_id for f in world.ground_truth}
    assert set(got) - set(want) == set(), "accidental findings"
    assert set(want) - set(got) == set(), "planted cases the rules do not produce"
    assert got == want, "account_id of a learner finding differs from the planted one"


def test_clean_world_has_no_finding_under_the_rules():
    world = build_world(3, "demo", clean=True)
    assert world.ground_truth == []
    assert oracle(world) == {}


@pytest.mark.parametrize("kw", [
    dict(courses=60, items=4, learners=8, profile="moodle"),
    dict(courses=30, items=3, learners=6, profiles=["d2l", "blackboard", "spec"]),
    dict(courses=1, items=1, learners=1, profile="canvas"),          # degenerate shapes still hold
])
def test_bench_world_with_plants_matches_the_rules(kw):
    world = build_world(5, "bench", **kw)
    assert world.ground_truth
    assert oracle(world) == {f.identity: f.account_id for f in world.ground_truth}


@pytest.mark.parametrize("profile", ["canvas", "d2l"])
def test_profile_filtered_demo_matches_the_rules(profile):
    world = build_world(2, "demo", profile=profile)
    assert {r.profile for r in world.state.registrations.values()} == {profile}
    assert oracle(world) == {f.identity: f.account_id for f in world.ground_truth}


def test_oracle_is_not_blind_a_removed_result_becomes_a_finding():
    world = build_world(4, "tiny", clean=True)
    reg = world.state.registrations["canvas-main"]
    course = next(iter(reg.courses.values()))
    item = course.line_items[0]
    user = next(iter(item.results))
    del item.results[user]
    found = oracle(world)
    assert len(found) == 1 and next(iter(found)).startswith("missing_in_lms|canvas-main|")


def test_passback_log_matches_the_lms_state():
    world = build_world(7, "demo")
    for cell in world.records.passbacks.values():
        last_accepted = [p for p in cell if p.outcome is Outcome.accepted]
        reg = world.state.registrations[cell[0].platform]
        item = reg.courses[cell[0].context_id].line_item(cell[0].item_id)
        res = item.results.get(cell[0].lms_user_id)
        if not last_accepted:
            assert res is None or not res.by_tool
            continue
        p = last_accepted[-1]
        if res is not None and res.by_tool:
            assert res.result_score == pytest.approx(p.score_given * item.score_maximum / p.score_maximum)
            assert res.stored_at <= p.timestamp
