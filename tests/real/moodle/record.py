"""Record what a real Moodle answers to every request gradesync's client makes → tests/fixtures/moodle-5.1/.

    .venv/bin/python tests/real/moodle/record.py --site /tmp/realmoodle/www [--out tests/fixtures/moodle-5.1]

Builds its own world (world.py, a fresh prefix) on the site, then sends each request once with plain httpx
and writes one JSON file per exchange: the request (method, URL, the headers that matter, score body),
the status line *with its reason phrase*, Content-Type, Link, and the body. Access tokens and client
assertions are replaced by "[redacted]"; no key is written. `build.json` names the Moodle build.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))      # tests/ → `real.moodle.*`

from real.moodle.wire import (MEDIA, READ_SCOPES, REDACTED, SCOPE_NRPS, SCOPE_SCORE, MoodleWire,  # noqa: E402
                              Recording, iso_z, results_url)
from real.moodle.world import RealWorld, build_world, new_key  # noqa: E402

REPO = Path(__file__).resolve().parents[3]


def _score(user: str, given: float, maximum: float, ts: float) -> dict:
    return {"userId": user, "scoreGiven": given, "scoreMaximum": maximum, "activityProgress": "Completed",
            "gradingProgress": "FullyGraded", "timestamp": iso_z(ts)}


def record_all(w: RealWorld) -> list[Recording]:
    """Every exchange, in the order sent (later ones see the effect of earlier score POSTs)."""
    recs: list[Recording] = []
    wire = w.wire()
    add = recs.append

    read, rec = wire.token(READ_SCOPES, "token_read_scopes", "the client's read grant")
    add(rec)
    score, rec = wire.token((SCOPE_SCORE,), "token_score_scope", "the score scope on its own")
    add(rec)
    _, rec = wire.token((*READ_SCOPES, "https://purl.imsglobal.org/spec/lti-ags/scope/unknown"),
                        "token_unknown_scope_dropped", "an ungranted scope is dropped silently (§1.6)")
    add(rec)
    nosync = w.wire("nosync")
    _, rec = nosync.token((SCOPE_SCORE,), "token_nosync_score_scope",
                          "tool type with grade sync off: the score scope alone → invalid_scope")
    add(rec)
    _, rec = nosync.token(READ_SCOPES, "token_nosync_read_scopes",
                          "tool type with grade sync off: only the NRPS scope of the read set is granted")
    add(rec)
    wrong = MoodleWire(w.ids["wwwroot"], w.ids["types"]["main"]["clientid"], new_key()[0])
    _, rec = wrong.token(READ_SCOPES, "token_wrong_key", "assertion signed with a key Moodle does not have")
    add(rec)
    unknown = MoodleWire(w.ids["wwwroot"], "no-such-client", w.private["main"])
    _, rec = unknown.token(READ_SCOPES, "token_unknown_client", "client id Moodle does not know")
    add(rec)
    for r in recs:
        r.body = wire.scrub(wrong.scrub(unknown.scrub(nosync.scrub(r.body))))
    assert read and score

    li = w.lineitems_url("alg")
    add(wire.get(li, read, MEDIA["lineitems"], "lineitems_all", "no limit: one page, no Link header"))
    page1 = wire.get(f"{li}&limit=2", read, MEDIA["lineitems"], "lineitems_limit2_page1",
                     "limit=2: Link targets &amp;-escaped, typographic quotes (§10)")
    add(page1)
    add(wire.get(f"{li}&limit=2&from=2", read, MEDIA["lineitems"], "lineitems_limit2_page2",
                 "the rel=next target of page 1 with &amp; unescaped"))
    add(wire.get(f"{li}&limit=2&from=4", read, MEDIA["lineitems"], "lineitems_limit2_page3", "last page"))
    add(wire.get(f"{li}&amp;limit=2&amp;from=2", read, MEDIA["lineitems"], "lineitems_link_taken_literally",
                 "the rel=next target followed as written: amp;limit is ignored, the whole list again"))
    quiz = w.rlid("quiz")
    add(wire.get(f"{li}&resource_link_id={quiz}", read, MEDIA["lineitems"], "lineitems_filter_resource_link_id",
                 "Moodle 5.1 reads resource_link_id"))
    add(wire.get(f"{li}&lti_link_id={quiz}&resource_link_id={quiz}", read, MEDIA["lineitems"],
                 "lineitems_filter_both", "what the client sends: both filter names"))
    add(wire.get(li, read, "*/*", "lineitems_accept_any", "Accept */* on the container"))
    add(wire.get(li, read, "application/json", "lineitems_accept_json", "Accept application/json"))
    add(wire.get(w.lineitems_url("chem"), read, MEDIA["lineitems"], "lineitems_deleted_course", "course deleted"))
    add(wire.get(w.lineitems_url("hist", "nosync").replace(f"type_id={w.type_id('nosync')}",
                                                            f"type_id={w.type_id('main')}"),
                 read, MEDIA["lineitems"], "lineitems_course_without_tool",
                 "a course where this tool type has no activity (empty list, not an error)"))

    items = w.ids["line_items"]
    quiz_item, essay_item, lab_item = items[quiz], items[w.rlid("essay")], items[w.rlid("lab")]
    add(wire.get(results_url(quiz_item), read, MEDIA["results"], "results_quiz", "graded rows only, no paging"))
    add(wire.get(results_url(quiz_item, "limit=2"), read, MEDIA["results"], "results_quiz_limit2",
                 "results paging with type_id crashes inside Moodle (§10)"))
    add(wire.get(results_url(quiz_item, f"user_id={w.uid('s1')}"), read, MEDIA["results"], "results_quiz_user",
                 "user_id filter"))
    add(wire.get(results_url(lab_item), read, MEDIA["results"], "results_locked_item", "locked item: no rows"))
    add(wire.get(results_url(quiz_item), read, "*/*", "results_accept_any", "Accept */* on results"))

    mem = w.memberships_url("alg")
    add(wire.get(mem, read, MEDIA["memberships"], "memberships_all",
                 "suspended enrolment absent; non-editing teacher listed as Learner (§10)"))
    add(wire.get(f"{mem}?limit=4", read, MEDIA["memberships"], "memberships_limit4_page1", "NRPS paging"))
    add(wire.get(f"{mem}?limit=4&from=4", read, MEDIA["memberships"], "memberships_limit4_page2", "page 2"))
    add(wire.get(f"{mem}?limit=4&from=8", read, MEDIA["memberships"], "memberships_limit4_page3", "page 3"))
    add(wire.get(w.memberships_url("chem"), read, MEDIA["memberships"], "memberships_deleted_course",
                 "course deleted"))

    now = time.time()
    add(wire.post_score(quiz_item, score, _score(w.uid("s2"), 90, 100, now), "score_accepted", "a learner"))
    add(wire.post_score(quiz_item, score, _score(w.uid("s9"), 70, 100, now), "score_user_not_enrolled",
                        "user not enrolled in the course"))
    add(wire.post_score(quiz_item, score, _score(w.uid("ta1"), 75, 100, now), "score_non_editing_teacher",
                        "enrolled, role outside gradebookroles (NRPS calls them Learner)"))
    add(wire.post_score(quiz_item, score, _score(w.uid("s10"), 72, 100, now), "score_suspended_learner",
                        "enrolment suspended"))
    add(wire.post_score(quiz_item, score, _score(w.uid("s1"), 86, 100, now - 3 * 3600), "score_stale_timestamp",
                        "timestamp older than the stored one"))
    add(wire.post_score(quiz_item, score, _score(w.uid("s2"), 91, 100, now), "score_same_second",
                        "same whole second as the accepted score above"))
    add(wire.post_score(lab_item, score, _score(w.uid("s2"), 61, 100, now), "score_locked_item",
                        "grade item locked"))
    add(wire.post_score(quiz_item, score, _score(w.uid("s4"), 95, 100, now), "score_over_teacher_override",
                        "teacher override 60 in the gradebook"))
    add(wire.post_score(essay_item, score, _score(w.uid("s2"), 18, 20, now), "score_rescaled",
                        "18/20 on an item whose maximum is 10"))
    add(wire.post_score(quiz_item, score, _score(w.uid("s3"), 96, 100, now + 1), "score_wrong_content_type",
                        "Content-Type application/json", content_type="application/json"))
    add(wire.post_score(quiz_item, score, _score(w.uid("s3"), 96, 100, now + 1), "score_content_type_with_charset",
                        "score media type with a charset parameter",
                        content_type=MEDIA["score"] + "; charset=utf-8"))
    add(wire.post_score(quiz_item, score, _score(w.uid("s3"), 97, 100, now + 1), "score_same_second_other_value",
                        "same whole second as the score just accepted for this learner, another value"))
    bad = _score(w.uid("s3"), 96, 100, now + 2)
    del bad["gradingProgress"]
    add(wire.post_score(quiz_item, score, bad, "score_missing_field", "gradingProgress missing"))
    add(wire.post_score(quiz_item, read, _score(w.uid("s3"), 96, 100, now + 3), "score_with_read_token",
                        "a token without the score scope"))
    add(wire.get(results_url(quiz_item), read, MEDIA["results"], "results_quiz_after_posts",
                 "s2 accepted; s4 still shows the override"))
    add(wire.get(results_url(essay_item), read, MEDIA["results"], "results_essay_after_rescale",
                 "18/20 stored as 9/10"))
    return recs


def write(recs: list[Recording], w: RealWorld, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.json"):
        old.unlink()
    for r in recs:
        text = json.dumps(r.as_json(), indent=2, ensure_ascii=False)
        assert "BEGIN" not in text and "eyJ" not in text, f"{r.name}: looks like key or JWT material"
        (out / f"{r.name}.json").write_text(text + "\n", encoding="utf-8")
    build = {"moodle_release": w.ids["moodle_release"], "moodle_version": w.ids["moodle_version"],
             "recorded_at": iso_z(time.time()), "server": "php -S (PHP built-in server), PostgreSQL",
             "wwwroot": w.ids["wwwroot"], "redacted": REDACTED,
             "world": {"prefix": w.prefix, "types": {k: {"id": v["id"]} for k, v in w.ids["types"].items()},
                       "users": w.ids["users"], "courses": w.ids["courses"], "activities": w.ids["activities"],
                       "line_items": w.ids["line_items"]},
             "roles": {"s1..s8": "student", "s10": "student, suspended", "s9": "not enrolled in alg",
                       "t1": "editingteacher", "ta1": "teacher (non-editing)"}}
    (out / "build.json").write_text(json.dumps(build, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, required=True, help="the Moodle site dir (holds config.php)")
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures" / "moodle-5.1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        world = build_world(args.site, Path(tmp), prefix=f"rec{int(time.time()) % 1_000_000}")
        recs = record_all(world)
    write(recs, world, args.out)
    print(f"{len(recs)} exchanges recorded into {args.out}")


if __name__ == "__main__":
    main()
