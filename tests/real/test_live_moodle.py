"""Opt-in: gradesync against a live, real Moodle 5.1 — import → audit → resync → audit through the CLI.

Needs (else skipped):
  GRADESYNC_TEST_MOODLE_URL   the site's wwwroot, e.g. http://127.0.0.1:18765 (../shared/tools/real-moodle)
  GRADESYNC_TEST_MOODLE_SITE  the site's directory (holds config.php): the world is provisioned with
                              `php tests/real/moodle/provision.php` through Moodle's own APIs
  a `php` CLI on PATH; PREFECT_API_URL optional (else a Prefect server is started for this module).
  GRADESYNC_TEST_MOODLE_RETAKE=0 leaves out the cross-course retake completion (see world.build_world)
  for an importer that still keys completions by account + activity.

A fresh world (its own tool types, key, courses and users, named by a new prefix) is built on every run,
so the site may be fresh (`RESET=1 setup.sh`) or already used. The findings must equal world.py's ground
truth; the resync must close exactly the resyncable gaps; the teacher's override must be untouched.
A per-category table (planted / found before / found after) is printed and written to
`$GRADESYNC_TEST_MOODLE_REPORT` when set.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

MOODLE_URL = os.environ.get("GRADESYNC_TEST_MOODLE_URL", "")
MOODLE_SITE = os.environ.get("GRADESYNC_TEST_MOODLE_SITE", "")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (MOODLE_URL and MOODLE_SITE), reason="live Moodle test: set GRADESYNC_TEST_MOODLE_URL "
                       "and GRADESYNC_TEST_MOODLE_SITE (see tests/real/test_live_moodle.py)"),
]
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
RESYNCABLE = {"missing_in_lms", "score_mismatch"}
CATEGORIES = ("grades_not_accepted", "course_unreachable", "link_not_graded", "item_not_active", "not_learner",
              "duplicate_account", "launched_outside_course", "outside_course_dates", "manual_grade_conflict",
              "score_mismatch", "missing_in_lms")


@pytest.fixture(scope="module")
def env(prefect_env):
    """CLI environment with a Prefect API (the session's server, tests/conftest.py)."""
    if shutil.which("php") is None:
        pytest.skip("no php CLI on PATH")
    return prefect_env


def cli(args: list[str], env: dict, config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "gradesync"), "--config", str(config), *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=1200)


def audit(env: dict, config: Path, out: Path) -> dict:
    proc = cli(["audit", "--json", str(out), "--no-alerts"], env, config)
    assert proc.returncode in (0, 3), proc.stderr[-3000:] + proc.stdout[-2000:]
    return json.loads(out.read_text())


def table(planted: Counter, first: Counter, second: Counter, expected_after: Counter) -> str:
    rows = ["| category | planted | found (audit 1) | expected after resync | found (audit 2) |",
            "|---|---:|---:|---:|---:|"]
    for c in CATEGORIES:
        rows.append(f"| {c} | {planted[c]} | {first[c]} | {expected_after[c]} | {second[c]} |")
    rows.append(f"| total | {sum(planted.values())} | {sum(first.values())} | {sum(expected_after.values())} "
                f"| {sum(second.values())} |")
    return "\n".join(rows)


def test_import_audit_resync_audit_against_live_moodle(env, tmp_path):
    sys.path.insert(0, str(REPO / "tests"))
    from real.moodle.world import PLATFORM, build_world, php

    world = build_world(Path(MOODLE_SITE), tmp_path / "export",
                        retake=os.environ.get("GRADESYNC_TEST_MOODLE_RETAKE", "1") != "0")
    assert world.ids["wwwroot"].rstrip("/") == MOODLE_URL.rstrip("/"), "GRADESYNC_TEST_MOODLE_URL is another site"
    config = world.out / "gradesync.toml"
    with config.open("a", encoding="utf-8") as fh:
        fh.write(f'\n[database]\nurl = "sqlite:///{tmp_path / "gs.db"}"\n\n[audit]\nreport_dir = "{tmp_path / "reports"}"\n')
    proc = cli(["import", str(world.out)], env, config)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]

    planted = {p.identity for p in world.truth}
    first = audit(env, config, tmp_path / "audit1.json")
    found = {f["identity"] for f in first["findings"]}
    assert found == planted, (sorted(planted - found), sorted(found - planted))
    unverified = {(c["platform"], c["context_id"]) for c in first["courses"] if c["status"] == "unverified"}
    assert (PLATFORM, world.cid("chem")) in unverified                # deleted course: no learner findings there

    override = {"course": world.cid("alg"), "instance": world.rlid("quiz"), "user": world.uid("s4")}
    before = php(Path(MOODLE_SITE), "grades", {"grades": [override]}, tmp_path)["grades"][0]
    proc = cli(["resync", "run"], env, config)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    resync_out = proc.stdout[-4000:]
    after = php(Path(MOODLE_SITE), "grades", {"grades": [override]}, tmp_path)["grades"][0]
    assert after == before and after["finalgrade"] == 60 and after["overridden"], (before, after)

    conflicts = [f for f in first["findings"] if f["category"] == "manual_grade_conflict"]
    assert conflicts and all(f["resync"] is None or f["resync"]["state"] == "needs_approval" for f in conflicts)

    second = audit(env, config, tmp_path / "audit2.json")
    conflicts = [f for f in second["findings"] if f["category"] == "manual_grade_conflict"]
    assert all(f["resync"] is None or not f["resync"].get("attempts") for f in conflicts), conflicts
    found_after = {f["identity"] for f in second["findings"]}
    expected_after = {p.identity for p in world.truth if p.category not in RESYNCABLE}
    by_cat = lambda ids: Counter(i.split("|", 1)[0] for i in ids)   # noqa: E731
    report = table(by_cat(planted), by_cat(found), by_cat(found_after), by_cat(expected_after))
    print(f"\nMoodle {world.ids['moodle_release']} at {MOODLE_URL}, world {world.prefix}\n{report}\n"
          f"resync run:\n{resync_out}")
    if os.environ.get("GRADESYNC_TEST_MOODLE_REPORT"):
        Path(os.environ["GRADESYNC_TEST_MOODLE_REPORT"]).write_text(f"{report}\n\nresync run:\n{resync_out}\n",
                                                                   encoding="utf-8")
    assert found_after == expected_after, (sorted(expected_after - found_after), sorted(found_after - expected_after))
