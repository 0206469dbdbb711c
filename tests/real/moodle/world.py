"""A gradesync test world on a real Moodle 5.1: what is planted, the tool's CSV export and the ground truth.

`build_world(site_dir, out_dir)` generates the tool's RSA key, runs `provision.php build` (tool types,
users, courses, enrolments, LTI activities, a locked grade item, a deleted course), makes the tool's
earlier score POSTs over real HTTP (the passback log records Moodle's real answers), applies a teacher
override in the gradebook (`provision.php override`), then writes `courses.csv` … `passbacks.csv`,
`keys/*.pem` (0600, generated now, never committed), `gradesync.toml` and `ground-truth.json`.

Planted (Moodle can produce every category but item_not_active-by-refusal; see docs/real-moodle-5.1.md):
  course_unreachable       a deleted course (404 "Course N doesn't exist")
  grades_not_accepted      a second tool type with grade sync off (token never grants the score scope)
  link_not_graded          an LTI activity created without "accept grades" (no grade item)
  item_not_active          a locked grade item: 3 learners completed, none has a result (the ≥3 rule)
  not_learner              non-editing teacher (NRPS says Learner, gradebook refuses: 400 in the log),
                           a learner not enrolled, a suspended learner
  duplicate_account        the work is in a manual account with the linked account's email
  launched_outside_course  a completion without launch context; one launched from another course
  outside_course_dates     completed before the course started
  manual_grade_conflict    tool sent 80 (accepted), teacher override 60 (update_final_grade 'gradebook')
  score_mismatch           tool sent 70 (accepted), the retake is 95
  missing_in_lms           completed, never sent
Distractors (no finding): in sync; 18/20 stored as 9/10 (rescale); the same activity done in two courses,
in sync in both; a learner with no completion; an ungraded link; an editing teacher.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

if __package__ in (None, ""):                      # run as a script: tests/ → `real.moodle.*`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from sandbox_lms.worlds.world import CSV_COLUMNS  # noqa: E402
from real.moodle.wire import MEDIA, READ_SCOPES, SCOPE_SCORE, MoodleWire, iso_z  # noqa: E402

HERE = Path(__file__).resolve().parent
PLATFORM = "moodle51"
PLATFORM_NOSYNC = "moodle51-nosync"
COLUMNS = CSV_COLUMNS                              # design.md "Inputs" 2, as the sandbox writes them
COURSE_START = datetime(2026, 9, 1, tzinfo=timezone.utc)
COURSE_END = datetime(2027, 1, 31, tzinfo=timezone.utc)
LEARNERS = ("s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10")

# course key → activities: key → (name, tool type, grade max in Moodle, accepts grades, locked, tool activity, graded)
ACTIVITIES: dict[str, dict[str, tuple[str, str, int, bool, bool, str, bool]]] = {
    "alg": {"quiz": ("Quiz 1", "main", 100, True, False, "act-quiz", True),
            "essay": ("Essay", "main", 10, True, False, "act-essay", True),
            "reading": ("Reading", "main", 100, False, False, "act-reading", True),
            "lab": ("Lab", "main", 100, True, True, "act-lab", True),
            "survey": ("Survey", "main", 100, False, False, "act-survey", False)},
    "bio": {"quiz2": ("Quiz 1 (Biology)", "main", 100, True, False, "act-quiz", True)},
    "chem": {"chemquiz": ("Chem quiz", "main", 100, True, False, "act-chem", True)},
    "hist": {"histquiz": ("History quiz", "nosync", 100, True, False, "act-hist", True)},
}
ENROL: dict[str, list[tuple[str, str, str]]] = {      # course → (user, role shortname, status)
    "alg": [("t1", "editingteacher", "active"), ("ta1", "teacher", "active")]
           + [(s, "student", "active") for s in ("s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8")]
           + [("s10", "student", "suspended")],
    "bio": [("t1", "editingteacher", "active"), ("s1", "student", "active"), ("s2", "student", "active")],
    "chem": [("t1", "editingteacher", "active"), ("s1", "student", "active")],
    "hist": [("t1", "editingteacher", "active"), ("s1", "student", "active")],
}
TITLES = {"alg": "Algebra", "bio": "Biology", "chem": "Chemistry (deleted)", "hist": "History"}


def new_key() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of a fresh RS256 key: generated per run, never stored in the repo."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def php(site: Path, command: str, payload: dict, work: Path) -> dict:
    """Run provision.php `command` with `payload`; its stdout is JSON."""
    request = work / f"{command}-{uuid.uuid4().hex[:8]}.json"
    request.write_text(json.dumps(payload), encoding="utf-8")
    proc = subprocess.run(["php", str(HERE / "provision.php"), str(site), command, str(request)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"provision.php {command} failed: {proc.stderr[-3000:]}{proc.stdout[-2000:]}")
    return json.loads(proc.stdout[proc.stdout.index("{"):])


def _write_private(path: Path, pem: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


@dataclass
class Planted:
    category: str
    platform: str
    context_id: str
    resource_link_id: str | None = None
    lms_user_id: str | None = None
    note: str = ""

    @property
    def identity(self) -> str:
        """`category|platform|context_id|resource_link_id|lms_user_id` (docs/diagnosis-rules.md)."""
        level = ("course" if self.category in ("grades_not_accepted", "course_unreachable")
                 else "item" if self.category in ("link_not_graded", "item_not_active") else "learner")
        rl = self.resource_link_id if level != "course" else None
        user = self.lms_user_id if level == "learner" else None
        return f"{self.category}|{self.platform}|{self.context_id}|{rl or ''}|{user or ''}"


@dataclass
class RealWorld:
    """The ids Moodle gave and the tool's records, ready to export."""
    site: Path
    out: Path
    prefix: str
    ids: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {k: [] for k in COLUMNS})
    truth: list[Planted] = field(default_factory=list)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    private: dict[str, bytes] = field(default_factory=dict)
    retake: bool = True

    # ---- ids ------------------------------------------------------------------------------------
    def uid(self, user: str) -> str:
        return str(self.ids["users"][user])

    def cid(self, course: str) -> str:
        return str(self.ids["courses"][course]["id"])

    def rlid(self, activity: str) -> str:
        return str(self.ids["activities"][activity]["instance"])

    def type_id(self, type_key: str) -> int:
        return self.ids["types"][type_key]["id"]

    def lineitems_url(self, course: str, type_key: str = "main") -> str:
        return f"{self.ids['wwwroot']}/mod/lti/services.php/{self.cid(course)}/lineitems?type_id={self.type_id(type_key)}"

    def memberships_url(self, course: str, type_key: str = "main") -> str:
        return (f"{self.ids['wwwroot']}/mod/lti/services.php/CourseSection/{self.cid(course)}/bindings/"
                f"{self.type_id(type_key)}/memberships")

    def wire(self, type_key: str = "main") -> MoodleWire:
        return MoodleWire(self.ids["wwwroot"], self.ids["types"][type_key]["clientid"], self.private[type_key])


def _spec(prefix: str, public_key_file: Path) -> dict[str, Any]:
    users = {u: {"username": f"{prefix}_{u}", "firstname": u.upper(), "lastname": prefix,
                 "email": f"{prefix}.{u}@example.edu"} for u in (*LEARNERS, "t1", "ta1")}
    courses = {}
    for c, acts in ACTIVITIES.items():
        courses[c] = {"fullname": f"{TITLES[c]} {prefix}", "shortname": f"{prefix}-{c}",
                      "startdate": int(COURSE_START.timestamp()), "enddate": int(COURSE_END.timestamp()),
                      "enrol": [{"user": u, "role": r, "status": s} for u, r, s in ENROL[c]],
                      "activities": {a: {"name": n, "type": t, "grade": g, "acceptgrades": acc, "locked": lk}
                                     for a, (n, t, g, acc, lk, _, _) in acts.items()},
                      "delete": c == "chem"}
    types = {k: {"name": f"gradesync {prefix} {k}", "baseurl": f"https://tool.example.edu/{prefix}/{k}",
                 "publickey_file": str(public_key_file), "gradesync": 2 if k == "main" else 0}
             for k in ("main", "nosync")}
    return {"types": types, "users": users, "courses": courses}


def build_world(site: Path, out: Path, prefix: str | None = None, retake: bool = True) -> RealWorld:
    """Provision the world on the Moodle at `site` and write the tool's export into `out`.

    `retake=False` leaves out the one completion that repeats an (account, activity) pair in another
    course (s1's Biology retake, design.md "completions are one per account + activity + launch context"),
    for importers that still key completions by account + activity; s1 then counts as
    launched_outside_course in Biology (the Algebra completion is another course's)."""
    out.mkdir(parents=True, exist_ok=True)
    prefix = prefix or f"gs{int(time.time()) % 10_000_000}"
    private, public = new_key()
    (out / "keys").mkdir(mode=0o700, exist_ok=True)
    public_file = out / "keys" / "tool-public.pem"
    public_file.write_bytes(public)
    world = RealWorld(site=site, out=out, prefix=prefix, private={"main": private, "nosync": private}, retake=retake)
    world.ids = php(site, "build", _spec(prefix, public_file), out)
    _tool_records(world)
    _plant_posts(world)
    if world.overrides:
        world.ids["overrides"] = php(site, "override", {"overrides": world.overrides}, out)["overrides"]
    _ground_truth(world)
    export(world)
    return world


# ---- the tool's records ---------------------------------------------------------------------------
def _ts(dt: datetime) -> str:
    return dt.isoformat()


def _tool_records(w: RealWorld) -> None:
    r = w.rows
    for c, acts in ACTIVITIES.items():
        platform = PLATFORM_NOSYNC if c == "hist" else PLATFORM
        type_key = "nosync" if c == "hist" else "main"
        r["courses"].append({"platform": platform, "deployment_id": f"deploy-{type_key}", "context_id": w.cid(c),
                             "title": TITLES[c], "lineitems_url": w.lineitems_url(c, type_key),
                             "memberships_url": w.memberships_url(c, type_key),
                             "starts_at": _ts(COURSE_START), "ends_at": _ts(COURSE_END)})
        for a, (name, _, _, _, _, activity, graded) in acts.items():
            r["links"].append({"platform": platform, "context_id": w.cid(c), "resource_link_id": w.rlid(a),
                               "activity_id": activity, "title": name, "graded": "true" if graded else "false"})
    for u in (*LEARNERS, "t1", "ta1"):
        r["accounts"].append({"account_id": f"acc-{u}", "email": f"{w.prefix}.{u}@example.edu",
                              "name": f"{u.upper()} {w.prefix}", "origin": "lti"})
        for platform in (PLATFORM, PLATFORM_NOSYNC):
            r["identities"].append({"account_id": f"acc-{u}", "platform": platform, "lms_user_id": w.uid(u)})
    # s5 did the work in a second account (manual sign-up, same email, other case): duplicate_account
    r["accounts"].append({"account_id": "acc-s5-manual", "email": f"{w.prefix}.S5@Example.edu",
                          "name": f"S5 {w.prefix}", "origin": "manual"})
    now = datetime.now(timezone.utc).replace(microsecond=0)
    recent = now - timedelta(hours=3)

    def done(user_account: str, activity: str, score: float, maximum: float, course: str | None,
             link: str | None, at: datetime = recent, platform: str = PLATFORM) -> None:
        r["completions"].append({"account_id": user_account, "activity_id": activity, "score_given": score,
                                 "score_maximum": maximum, "completed_at": _ts(at),
                                 "platform": platform if course else "", "context_id": w.cid(course) if course else "",
                                 "resource_link_id": w.rlid(link) if link else ""})

    done("acc-s1", "act-quiz", 85, 100, "alg", "quiz")                 # in sync (tool sent 85)
    done("acc-s2", "act-quiz", 90, 100, "alg", "quiz")                 # missing_in_lms; also shows in bio
    done("acc-s3", "act-quiz", 95, 100, "alg", "quiz", now - timedelta(minutes=30))   # retake → score_mismatch
    done("acc-s4", "act-quiz", 80, 100, "alg", "quiz")                 # teacher override → conflict
    done("acc-ta1", "act-quiz", 75, 100, "alg", "quiz")                # non-editing teacher → not_learner
    done("acc-s5-manual", "act-quiz", 88, 100, None, None)             # duplicate_account
    done("acc-s6", "act-quiz", 77, 100, None, None)                    # launched_outside_course (manual login)
    done("acc-s7", "act-quiz", 66, 100, "alg", "quiz", COURSE_START - timedelta(days=17))   # outside dates
    done("acc-s9", "act-quiz", 70, 100, "alg", "quiz")                 # not enrolled → not_learner
    done("acc-s10", "act-quiz", 72, 100, "alg", "quiz")                # suspended → not_learner
    done("acc-s1", "act-essay", 18, 20, "alg", "essay")                # 18/20 stored as 9/10: in sync
    done("acc-s1", "act-reading", 1, 1, "alg", "reading")              # link_not_graded
    for s, score in (("s1", 60), ("s2", 61), ("s3", 62)):               # locked item: item_not_active
        done(f"acc-{s}", "act-lab", score, 100, "alg", "lab")
    if w.retake:
        done("acc-s1", "act-quiz", 92, 100, "bio", "quiz2")            # same activity in bio, in sync there
    done("acc-s1", "act-hist", 50, 100, "hist", "histquiz", platform=PLATFORM_NOSYNC)


def _line_item_ids(w: RealWorld, course: str) -> dict[str, str]:
    """resourceLinkId → line item URL, read from Moodle (the ids are Moodle's)."""
    wire = w.wire()
    token, rec = wire.token(READ_SCOPES)
    assert token, rec.as_json()
    rec = wire.get(w.lineitems_url(course), token, MEDIA["lineitems"], "lineitems")
    assert rec.status == 200, rec.as_json()
    return {str(li.get("resourceLinkId")): li["id"] for li in json.loads(rec.body)}


def _plant_posts(w: RealWorld) -> None:
    """The tool's earlier passbacks, sent for real; each answer is logged as the tool would log it."""
    wire = w.wire()
    token, rec = wire.token((SCOPE_SCORE,))
    assert token, rec.as_json()
    items = {**_line_item_ids(w, "alg"), **_line_item_ids(w, "bio")}
    w.ids["line_items"] = items
    base = time.time() - 2 * 3600

    def post(user: str, course: str, link: str, score: float, maximum: float, offset_s: int) -> None:
        ts = iso_z(base + offset_s)
        item = items[w.rlid(link)]
        rec = wire.post_score(item, token, {"userId": w.uid(user), "scoreGiven": score, "scoreMaximum": maximum,
                                            "activityProgress": "Completed", "gradingProgress": "FullyGraded",
                                            "timestamp": ts})
        # Moodle 5.1 puts refusal text in the reason phrase with body [] (§10): the log keeps the phrase.
        response = rec.reason if rec.body.strip() in ("", "[]") else rec.body
        w.rows["passbacks"].append({"account_id": f"acc-{user}", "platform": PLATFORM, "context_id": w.cid(course),
                                    "resource_link_id": w.rlid(link), "line_item_id": item,
                                    "lms_user_id": w.uid(user), "score_given": score, "score_maximum": maximum,
                                    "timestamp": ts, "status_code": rec.status, "response": response})

    post("s1", "alg", "quiz", 85, 100, 0)
    post("s3", "alg", "quiz", 70, 100, 1)
    post("s4", "alg", "quiz", 80, 100, 2)
    post("ta1", "alg", "quiz", 75, 100, 3)        # 400 Incorrect score received (not in gradebookroles)
    post("s1", "alg", "essay", 18, 20, 4)
    post("s1", "alg", "lab", 60, 100, 5)           # 500, locked
    post("s1", "bio", "quiz2", 92, 100, 6)
    w.overrides.append({"course": w.cid("alg"), "instance": w.rlid("quiz"), "user": w.uid("s4"), "grade": 60})


def _ground_truth(w: RealWorld) -> None:
    alg, bio = w.cid("alg"), w.cid("bio")
    quiz = w.rlid("quiz")
    t = w.truth
    t.append(Planted("course_unreachable", PLATFORM, w.cid("chem"), note="course deleted in Moodle"))
    t.append(Planted("grades_not_accepted", PLATFORM_NOSYNC, w.cid("hist"), note="tool type with grade sync off"))
    t.append(Planted("link_not_graded", PLATFORM, alg, w.rlid("reading"), note="activity without grades"))
    t.append(Planted("item_not_active", PLATFORM, alg, w.rlid("lab"), note="grade item locked: 3 expected, none"))
    t.append(Planted("not_learner", PLATFORM, alg, quiz, w.uid("ta1"), "non-editing teacher, NRPS Learner"))
    t.append(Planted("not_learner", PLATFORM, alg, quiz, w.uid("s9"), "not enrolled"))
    t.append(Planted("not_learner", PLATFORM, alg, quiz, w.uid("s10"), "enrolment suspended"))
    t.append(Planted("duplicate_account", PLATFORM, alg, quiz, w.uid("s5"), "work in a manual account"))
    t.append(Planted("launched_outside_course", PLATFORM, alg, quiz, w.uid("s6"), "manual login"))
    t.append(Planted("launched_outside_course", PLATFORM, bio, w.rlid("quiz2"), w.uid("s2"),
                     "completed from Algebra's link"))
    if not w.retake:
        t.append(Planted("launched_outside_course", PLATFORM, bio, w.rlid("quiz2"), w.uid("s1"),
                         "no Biology completion on record: Algebra's is another course's"))
    t.append(Planted("outside_course_dates", PLATFORM, alg, quiz, w.uid("s7"), "before the course start"))
    t.append(Planted("manual_grade_conflict", PLATFORM, alg, quiz, w.uid("s4"), "teacher override 60"))
    t.append(Planted("score_mismatch", PLATFORM, alg, quiz, w.uid("s3"), "LMS 70 = earlier send, retake 95"))
    t.append(Planted("missing_in_lms", PLATFORM, alg, quiz, w.uid("s2"), "never sent"))


def export(w: RealWorld) -> Path:
    """Write the CSVs, the key, gradesync.toml and ground-truth.json into `w.out`; return the toml path."""
    for name, rows in w.rows.items():
        with open(w.out / f"{name}.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS[name])
            writer.writeheader()
            writer.writerows(rows)
    _write_private(w.out / "keys" / "tool.pem", w.private["main"])
    wwwroot = w.ids["wwwroot"]
    host = wwwroot.split("//", 1)[1].split("/", 1)[0].split(":")[0]
    lines = [f"# Real Moodle world {w.prefix} at {wwwroot} (Moodle {w.ids['moodle_release']})", ""]
    for platform, type_key in ((PLATFORM, "main"), (PLATFORM_NOSYNC, "nosync")):
        lines += ["[[platforms]]", f'name = "{platform}"', 'vendor = "moodle"', f'issuer = "{wwwroot}"',
                  f'client_id = "{w.ids["types"][type_key]["clientid"]}"',
                  f'token_url = "{wwwroot}/mod/lti/token.php"', 'private_key_file = "keys/tool.pem"',
                  'key_id = "gradesync-real"', f'allowed_hosts = ["{host}"]', ""]
    toml = w.out / "gradesync.toml"
    toml.write_text("\n".join(lines), encoding="utf-8")
    truth = {"prefix": w.prefix, "moodle_release": w.ids["moodle_release"], "ids": w.ids,
             "ground_truth": [{"identity": p.identity, "category": p.category, "platform": p.platform,
                               "context_id": p.context_id, "resource_link_id": p.resource_link_id,
                               "lms_user_id": p.lms_user_id, "note": p.note} for p in w.truth]}
    (w.out / "ground-truth.json").write_text(json.dumps(truth, indent=2), encoding="utf-8")
    return toml


def main() -> None:
    """`python tests/real/moodle/world.py --site DIR --out DIR`: provision a world and write its export."""
    import argparse
    parser = argparse.ArgumentParser(description="Provision a gradesync test world into a real Moodle.")
    parser.add_argument("--site", type=Path, required=True, help="the Moodle site dir (holds config.php)")
    parser.add_argument("--out", type=Path, required=True, help="where the CSVs, key, toml and truth go")
    parser.add_argument("--prefix", help="name prefix (default: a new one)")
    args = parser.parse_args()
    world = build_world(args.site, args.out, args.prefix)
    print(f"world {world.prefix}: {len(world.truth)} planted findings; "
          f"gradesync --config {args.out / 'gradesync.toml'} import {args.out}", file=sys.stdout)


if __name__ == "__main__":
    main()
