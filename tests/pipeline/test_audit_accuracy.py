"""The audit through its real entry point (`gradesync audit`, a real Prefect flow run, real HTTP to the
sandbox LMS) finds exactly the planted ground truth of generated worlds."""
from __future__ import annotations

import json

import pytest

from pipeline.pipeline_helpers import REPO, run_cli, serve_world

pytestmark = pytest.mark.slow


def audit_json(served, prefect_env, tmp_path, *extra: str):
    out = tmp_path / "audit.json"
    proc = run_cli(["audit", "--config", str(served.config), "--json", str(out), "--no-alerts", *extra],
                   prefect_env, REPO)
    assert proc.returncode in (0, 3), proc.stderr[-3000:] + proc.stdout[-2000:]
    return proc, json.loads(out.read_text())


@pytest.mark.parametrize("seed", [11, 12])
def test_tiny_worlds_findings_equal_ground_truth(seed, tmp_path, prefect_env):
    with serve_world(tmp_path, seed, "tiny", f"sqlite:///{tmp_path / 'gs.db'}") as served:
        proc, data = audit_json(served, prefect_env, tmp_path)
    found = {f["identity"] for f in data["findings"]}
    assert found == served.planted, (sorted(served.planted - found), sorted(found - served.planted))
    # course_unreachable is planted: those courses are unverified, and the exit code says so
    unverified = {(c["platform"], c["context_id"]) for c in data["courses"] if c["status"] == "unverified"}
    unreachable = {(p.platform, p.context_id) for p in served.world.ground_truth if p.category == "course_unreachable"}
    assert unverified == unreachable
    assert proc.returncode == (3 if unverified else 0)
    # every category of design.md is represented in the world and found
    assert {f["category"] for f in data["findings"]} == {p.category for p in served.world.ground_truth}
    # the Prefect flow run says so too: Completed, named "Partial" when courses are unverified
    assert flow_run_state_name(served.database_url, data["run_id"], prefect_env) == ("Partial" if unverified else "Completed")


def flow_run_state_name(database_url: str, run_id: int, prefect_env: dict) -> str:
    import asyncio
    import uuid

    import models as m
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with m.session_scope(m.make_engine(database_url)) as s:
        flow_run_id = s.get(m.AuditRun, run_id).flow_run_id

    async def read() -> str:
        async with get_client() as client:
            return (await client.read_flow_run(uuid.UUID(flow_run_id))).state.name

    with temporary_settings(updates={PREFECT_API_URL: prefect_env["PREFECT_API_URL"]}):
        return asyncio.run(read())


def test_demo_world_on_both_databases_every_category(tmp_path, prefect_env, db_url):
    with serve_world(tmp_path, 7, "demo", db_url) as served:
        _, data = audit_json(served, prefect_env, tmp_path)
    found = {f["identity"] for f in data["findings"]}
    # On a mismatch, say also which courses were not audited and why (a planted course_unreachable was
    # missed once under load: issue 13's closing note).
    unaudited = [c for c in data["courses"] if c.get("status") != "audited"]
    assert found == served.planted, (sorted(served.planted - found)[:10], sorted(found - served.planted)[:10],
                                     unaudited[:10])
    assert len({f["category"] for f in data["findings"]}) == 11
    # the JSON export's public contract
    f = data["findings"][0]
    for key in ("category", "platform", "context_id", "resource_link_id", "activity_id", "line_item_id",
                "account_id", "lms_user_id", "tool_score", "lms_score", "evidence", "action", "resync"):
        assert key in f
    for key in ("run_id", "started_at", "finished_at", "courses", "findings"):
        assert key in data
    resyncable = [f for f in data["findings"] if f["category"] in ("missing_in_lms", "score_mismatch")]
    assert resyncable and all(f["resync"] and f["resync"]["state"] == "pending" for f in resyncable)
    conflicts = [f for f in data["findings"] if f["category"] == "manual_grade_conflict"]
    assert conflicts and all(f["resync"]["state"] == "needs_approval" for f in conflicts)


def test_clean_world_has_no_findings_and_exit_code_zero(tmp_path, prefect_env):
    with serve_world(tmp_path, 5, "tiny", f"sqlite:///{tmp_path / 'gs.db'}", clean=True) as served:
        proc, data = audit_json(served, prefect_env, tmp_path)
    assert data["findings"] == []
    assert all(c["status"] == "audited" for c in data["courses"]) and proc.returncode == 0


def test_findings_command_filters_and_formats(tmp_path, prefect_env):
    with serve_world(tmp_path, 11, "tiny", f"sqlite:///{tmp_path / 'gs.db'}") as served:
        audit_json(served, prefect_env, tmp_path)
    proc = run_cli(["findings", "--config", str(served.config), "--category", "missing_in_lms", "--format", "json"],
                   prefect_env, REPO)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["findings"]
    assert rows and {r["category"] for r in rows} == {"missing_in_lms"}
    proc = run_cli(["findings", "--config", str(served.config), "--format", "csv"], prefect_env, REPO)
    assert proc.returncode == 0 and proc.stdout.splitlines()[0].startswith("id,category,platform")
    assert len(proc.stdout.splitlines()) == 1 + len(served.planted)
