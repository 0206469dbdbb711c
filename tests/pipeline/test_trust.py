"""Issue 10 through the CLI: no score POST lands on a value the tool did not send (any vendor), an
on-demand audit narrowed to one activity leaves the others alone, and a rotated key gives unverified
courses and one incident, never findings."""
from __future__ import annotations

import json
import sqlite3
import sys

import pytest

from pipeline.pipeline_helpers import REPO, run_cli, serve_world

pytestmark = pytest.mark.slow
sys.path.insert(0, str(REPO / "tests" / "alerts"))
import capture_server  # noqa: E402

RESYNCABLE = ("missing_in_lms", "score_mismatch")


def audit(served, env, tmp_path, name, *extra):
    out = tmp_path / f"{name}.json"
    proc = run_cli(["audit", "--config", str(served.config), "--json", str(out), *extra], env, REPO)
    assert proc.returncode in (0, 3), proc.stderr[-3000:] + proc.stdout[-2000:]
    return json.loads(out.read_text())


def cells(world) -> dict[tuple[str, str, int, str], tuple[float | None, bool, str | None]]:
    """Every gradebook cell of the sandbox: (score, written by the tool, scorer)."""
    out = {}
    for reg in world.state.registrations.values():
        for course in reg.courses.values():
            for item in course.line_items:
                for user, r in item.results.items():
                    out[(reg.name, course.context_id, item.id, user)] = (r.result_score, r.by_tool, r.scoring_user_id)
    return out


def item_number(line_item_url: str) -> int:
    path = line_item_url.split("?", 1)[0].rstrip("/")
    if path.endswith("/lineitem"):
        path = path[: -len("/lineitem")]
    return int(path.rsplit("/", 1)[1])


def test_resync_never_posts_over_a_value_the_tool_did_not_send_on_any_vendor(tmp_path, prefect_env):
    with serve_world(tmp_path, 21, "demo", f"sqlite:///{tmp_path / 'gs.db'}") as served:
        control = served.sandbox.control
        first = audit(served, prefect_env, tmp_path, "first", "--no-alerts")
        # A Canvas teacher grade AGS cannot show (no Lti::Result: §3.2) on a cell the audit calls missing.
        hidden = next(f for f in first["findings"]
                      if f["category"] == "missing_in_lms" and f["platform"] == "canvas-main")
        control.plant_hidden_teacher_grade("canvas-main", hidden["context_id"], item_number(hidden["line_item_id"]),
                                           hidden["lms_user_id"], 1.0)
        before = cells(served.world)
        control.reset_counters()
        proc = run_cli(["--config", str(served.config), "resync", "run"], prefect_env, REPO)
        assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
        posted = list(served.sandbox.runtime.score_bodies)
        after = cells(served.world)

    allowed = {(f["platform"], f["context_id"], item_number(f["line_item_id"]), f["lms_user_id"])
               for f in first["findings"] if f["category"] in RESYNCABLE}
    # an inactive item's resyncable gaps wait on its finding and are probed (issue 10 §3)
    allowed |= {(f["platform"], f["context_id"], item_number(f["line_item_id"]), g["lms_user_id"])
                for f in first["findings"] if f["category"] == "item_not_active"
                for g in f["evidence"].get("blocked_gaps", [])}
    manual = {(f["platform"], f["context_id"], item_number(f["line_item_id"]), f["lms_user_id"])
              for f in first["findings"] if f["category"] == "manual_grade_conflict"}
    assert manual and {f["platform"] for f in first["findings"] if f["category"] in RESYNCABLE} >= {
        "canvas-main", "moodle-main", "d2l-main", "blackboard-main"}
    assert posted, "the resync sent nothing"
    for p in posted:
        cell = (p.registration, p.context_id, p.item_id, p.body.get("userId"))
        assert cell in allowed, f"POST to a cell the audit did not queue for a resync: {cell}"
        assert "comment" not in p.body, "a resync must not replace the learner-visible feedback"
        if p.registration.startswith("canvas"):
            ext = p.body.get("https://canvas.instructure.com/lti/submission", {})
            assert ext.get("prioritize_non_tool_grade") is True, p.body
    for cell in manual:
        assert after.get(cell) == before.get(cell), f"a person's grade changed without approval: {cell}"
    changed = {c for c in set(before) | set(after) if before.get(c) != after.get(c)}
    assert changed and changed <= allowed
    hidden_cell = ("canvas-main", hidden["context_id"], item_number(hidden["line_item_id"]), hidden["lms_user_id"])
    score, by_tool, _ = after[hidden_cell]
    assert score == 1.0 and not by_tool, "Canvas kept the teacher's grade; the resync must not replace it"


def test_on_demand_audit_of_one_activity_leaves_other_activities_alone(tmp_path, prefect_env):
    db = tmp_path / "gs.db"
    with serve_world(tmp_path, 22, "tiny", f"sqlite:///{db}") as served:
        full = audit(served, prefect_env, tmp_path, "full", "--no-alerts")
        learner = [f for f in full["findings"] if f["activity_id"] and f["platform"] == "canvas-main"]
        activity = learner[0]["activity_id"]
        others = {f["identity"] for f in full["findings"] if f["activity_id"] not in (None, activity)}
        assert others
        tasks_before = dict(sqlite3.connect(db).execute(
            "select id, state from resync_task where activity_id != ?", (activity,)).fetchall())
        assert tasks_before
        scoped = audit(served, prefect_env, tmp_path, "scoped", "--activity", activity, "--no-alerts")
        tasks_after = dict(sqlite3.connect(db).execute(
            "select id, state from resync_task where activity_id != ?", (activity,)).fetchall())
    from gradesync.audit.persist import load_summary

    summary = load_summary(f"sqlite:///{db}", scoped["run_id"])
    assert {f["activity_id"] for f in scoped["findings"]} <= {activity, None}
    assert not summary.resolved and not summary.new, "nothing changed in the LMS between the two runs"
    assert tasks_after == tasks_before, "a scoped audit cancelled or changed another activity's tasks"


def test_a_rotated_key_gives_unverified_courses_one_incident_and_no_findings(tmp_path, prefect_env,
                                                                             rsa_private_pem):
    slack = capture_server.start()
    try:
        with serve_world(tmp_path, 23, "tiny", f"sqlite:///{tmp_path / 'gs.db'}") as served:
            # The tool rotated its key; the platform still holds the old public key.
            (served.folder / "keys" / "canvas-main.pem").write_bytes(rsa_private_pem)
            with served.config.open("a") as fh:
                fh.write(f'\n[slack]\nwebhook_url = "{slack.url("support")}"\n')
            data = audit(served, prefect_env, tmp_path, "rotated")
        texts = [p.body.get("text", "") for p in slack.ok_posts_to("support")]
    finally:
        slack.httpd.shutdown()
    canvas = [c for c in data["courses"] if c["platform"] == "canvas-main"]
    assert canvas and all(c["status"] == "unverified" and "credentials rejected" in (c["reason"] or "")
                          for c in canvas)
    assert not [f for f in data["findings"] if f["platform"] == "canvas-main"], "no finding from a refused key"
    incidents = [t for t in texts if "Credentials rejected" in t]
    assert len(incidents) == 1 and "canvas-main" in incidents[0], texts
    assert not any("Grades not accepted on canvas-main" in t for t in texts)
    # the other platform is audited as usual
    assert any(c["status"] == "audited" for c in data["courses"] if c["platform"] == "moodle-main")
