"""The planted ground truth holds under docs/diagnosis-rules.md, checked by a small, independent
reading of the rules over the raw world (no gradesync code): every planted case comes out as exactly
its category, and every other expected grade is in sync — so a world has no accidental findings."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import pytest

from sandbox_lms import urls
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
    if status is None:
        return False
    return (profile == "canvas" and status == 400 and "before last updated timestamp" in body) or \
           (profile == "moodle" and status == 409)


def _status(p) -> int | None:
    return int(p["status_code"]) if p["status_code"] else None      # empty: the POST timed out


def _ok(p) -> bool:
    st = _status(p)
    return st is not None and 200 <= st < 300


def _self_collision(profile, refused, cell) -> bool:
    """A stale refusal explained by another send of the tool's own that may have landed at or after
    its timestamp, at the platform's resolution (Moodle: whole seconds)."""
    def at(p):
        t = _ts(p["timestamp"]).timestamp()
        return int(t) if profile == "moodle" else round(t, 3)
    return any(p is not refused and (_status(p) is None or _ok(p) or _status(p) >= 500) and at(p) >= at(refused)
               for p in cell)


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
    linked_anywhere = {(i["platform"], i["account_id"]) for i in rows["identities"]}
    comps = defaultdict(lambda: defaultdict(list))   # activity → account → completion rows (one per context)
    for c in rows["completions"]:
        comps[c["activity_id"]][c["account_id"]].append(c)
    pbs = defaultdict(list)
    for p in rows["passbacks"]:
        # a row without a resource link belongs to its line item's cells
        pbs[(p["platform"], p["context_id"], p["resource_link_id"] or p["line_item_id"], p["lms_user_id"])].append(p)
        pbs[(p["platform"], p["context_id"], p["resource_link_id"] or p["line_item_id"])].append(p)
    out: dict[str, str | None] = {}

    def emit(cat, plat, ctx, rl=None, user=None, account=None):
        out[f"{cat}|{plat}|{ctx}|{rl or ''}|{user or ''}"] = account

    def pick(plat, ctx, act, acc):
        """The account's completion for this course: launched from it, else the latest."""
        mine = comps[act].get(acc) or []
        here = [c for c in mine if (c["platform"], c["context_id"]) == (plat, ctx)]
        return max(here or mine, key=lambda c: _ts(c["completed_at"])) if mine else None

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
            bound = [li for li in items if li.resource_link_id == rl]
            item = bound[0] if len(bound) == 1 else None
            if item is None:
                # not bound: the line item the tool's passbacks for the link posted to
                targets = [p["line_item_id"] for p in pbs.get((plat, ctx, rl), []) if p["resource_link_id"] == rl]
                item = next((li for li in (bound or items)
                             if urls.line_item_url(BASE, reg, ctx, li.id) in targets), None)
            if item is None:
                if not bound:
                    emit("link_not_graded", plat, ctx, rl)
                continue                          # several bound and none posted to: unverified
            item_url = urls.line_item_url(BASE, reg, ctx, item.id)
            # expected grades: (a) roster learners via any same-email account (the linked account's
            # e-mail, or the roster's own when none is linked), (b) linked accounts whose completion
            # carries (P, C)
            expected: dict[str, tuple[str, dict]] = {}
            for uid, m in members.items():
                if LEARNER not in m.roles:
                    continue
                acc = ident[plat].get(uid)
                own = pick(plat, ctx, act, acc) if acc else None
                if own is not None:
                    expected[uid] = (acc, own)
                    continue
                mails = {e for e in (email.get(acc or ""), (m.email or "").lower()) if e}
                others = sorted({a for e in mails for a in by_email.get(e, []) if a != acc
                                 and (acc is not None or (plat, a) not in linked_anywhere)})
                found = [(a, pick(plat, ctx, act, a)) for a in others if pick(plat, ctx, act, a)]
                if found:
                    here = [f for f in found if (f[1]["platform"], f[1]["context_id"]) == (plat, ctx)]
                    best = max(here or found, key=lambda f: _ts(f[1]["completed_at"]))
                    expected[uid] = best
            for uid, acc in ident[plat].items():
                c = pick(plat, ctx, act, acc)
                if c and uid not in expected and any((x["platform"], x["context_id"]) == (plat, ctx)
                                                     for x in comps[act][acc]):
                    expected[uid] = (acc, c)
            results = _visible_results(reg.profile, item)
            log = sorted(pbs.get((plat, ctx, rl), []) + pbs.get((plat, ctx, item_url), []),
                         key=lambda p: _ts(p["timestamp"]))
            answered = [p for p in log if _status(p) is not None]
            if answered and _refused_inactive(reg.profile, _status(answered[-1]), answered[-1]["response"]):
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
                linked = ident[plat].get(uid)
                cell = sorted(pbs.get((plat, ctx, rl, uid), []) + pbs.get((plat, ctx, item_url, uid), []),
                              key=lambda p: _ts(p["timestamp"]))
                accepted = [p for p in cell if _ok(p)]
                last_answer = [p for p in cell if _status(p) is not None][-1:]
                at = _ts(c["completed_at"])
                stale = bool(last_answer) and _refused_stale(reg.profile, _status(last_answer[0]), last_answer[0]["response"]) \
                    and not _self_collision(reg.profile, last_answer[0], cell)
                if m is None or LEARNER not in m.roles or m.status != "Active":
                    cat = "not_learner"
                elif linked is not None and acc != linked:
                    cat = "duplicate_account"
                elif c["platform"] != plat or c["context_id"] != ctx:
                    cat = "launched_outside_course"
                elif at < starts or at > ends or (item.start_date_time and at < item.start_date_time) \
                        or (item.end_date_time and at > item.end_date_time):
                    cat = "outside_course_dates"
                elif stale or (res is not None and (
                        res.scoring_user_id is not None
                        or not accepted
                        or abs(float(accepted[-1]["score_given"]) / float(accepted[-1]["score_maximum"])
                               - res.result_score / res.result_maximum) > 0.005
                        or int(res.stored_at.timestamp()) > int(_ts(accepted[-1]["timestamp"]).timestamp()))):
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
