"""The whole loop through the CLI: audit → resync run → audit shows the resyncable findings resolved;
manual-grade conflicts stay until approved, and an approved Canvas supersede lands."""
from __future__ import annotations

import json

import pytest

from pipeline.pipeline_helpers import REPO, run_cli, serve_world

pytestmark = pytest.mark.slow


def audit(served, env, tmp_path, name):
    out = tmp_path / f"{name}.json"
    proc = run_cli(["audit", "--config", str(served.config), "--json", str(out), "--no-alerts"], env, REPO)
    assert proc.returncode in (0, 3), proc.stderr[-3000:]
    return json.loads(out.read_text())


def resync(served, env):
    proc = run_cli(["--config", str(served.config), "resync", "run"], env, REPO)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    return proc


def test_resync_resolves_missing_and_mismatch_and_approved_conflicts(tmp_path, prefect_env):
    with serve_world(tmp_path, 11, "tiny", f"sqlite:///{tmp_path / 'gs.db'}") as served:
        first = audit(served, prefect_env, tmp_path, "first")
        by_cat = lambda data, c: {f["identity"] for f in data["findings"] if f["category"] == c}  # noqa: E731
        # Canvas keeps a present grade under prioritize_non_tool_grade (issue 10): its score_mismatch is
        # held for approval, not sent.
        held = {f["identity"] for f in first["findings"]
                if f["category"] == "score_mismatch" and f["platform"].startswith("canvas")}
        resyncable = (by_cat(first, "missing_in_lms") | by_cat(first, "score_mismatch")) - held
        conflicts = [f for f in first["findings"] if f["category"] == "manual_grade_conflict"]
        assert resyncable and conflicts

        first_resync = resync(served, prefect_env)
        posts_after_first = served.sandbox.control.counters()["score_posts"]
        second = audit(served, prefect_env, tmp_path, "second")
        found = {f["identity"] for f in second["findings"]}
        assert not (resyncable & found), first_resync.stdout[-3000:]
        assert {f["identity"] for f in conflicts} <= found, "conflicts are untouched until approved"
        assert held <= found, "a grade Canvas keeps is untouched until approved"

        # a second resync sends nothing new — but one probe per item still refusing scores (issue 10 §3)
        resync(served, prefect_env)
        after = served.sandbox.control.counters()["score_posts"]
        extra = {k: n - posts_after_first.get(k, 0) for k, n in after.items() if n != posts_after_first.get(k, 0)}
        blocked = {f["line_item_id"].rstrip("/").rsplit("/", 1)[1] for f in second["findings"]
                   if f["category"] == "item_not_active" and f["line_item_id"]}
        probed_items = [k.split("/")[2] for k in extra]
        assert set(probed_items) <= blocked and len(probed_items) == len(set(probed_items)), extra
        assert all(n == 1 for n in extra.values()), extra

        canvas_conflicts = [f for f in second["findings"]
                            if f["category"] == "manual_grade_conflict" and f["platform"] == "canvas-main"]
        assert canvas_conflicts
        proc = run_cli(["--config", str(served.config), "resync", "approve",
                        *[str(f["id"]) for f in canvas_conflicts], "--by", "support@example.edu"], prefect_env, REPO)
        assert proc.returncode == 0, proc.stderr[-2000:]
        resync(served, prefect_env)
        third = audit(served, prefect_env, tmp_path, "third")
    assert not ({f["identity"] for f in canvas_conflicts} & {f["identity"] for f in third["findings"]})


def test_a_resync_refusal_keeps_its_meaning_in_the_next_audit(tmp_path, prefect_env):
    with serve_world(tmp_path, 11, "tiny", f"sqlite:///{tmp_path / 'gs.db'}") as served:
        first = audit(served, prefect_env, tmp_path, "first")
        # a missing grade when there is one (Canvas holds a score_mismatch for approval, issue 10)
        target = sorted((f for f in first["findings"]
                         if f["category"] in ("missing_in_lms", "score_mismatch") and f["platform"] == "canvas-main"),
                        key=lambda f: f["category"] != "missing_in_lms")[0]
        item_id = int(target["line_item_id"].rstrip("/").rsplit("/", 1)[1])
        served.sandbox.control.set_published("canvas-main", target["context_id"], item_id, False)
        if target["category"] == "score_mismatch":
            # Canvas holds a score_mismatch for approval (issue 10); approved, it is sent — and refused.
            resync(served, prefect_env)
            proc = run_cli(["--config", str(served.config), "resync", "approve", str(target["id"]), "--by", "x"],
                           prefect_env, REPO)
            assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        resync(served, prefect_env)
        second = audit(served, prefect_env, tmp_path, "second")
    item = f"item_not_active|canvas-main|{target['context_id']}|{target['resource_link_id']}|"
    found = {f["identity"] for f in second["findings"]}
    assert item in found and target["identity"] not in found
