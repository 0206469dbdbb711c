"""prefect.yaml is accepted by `prefect deploy --all` against a real Prefect server, with the nightly
cron + timezone, the on-demand course audit and the resync deployment on a process work pool — without
warnings, also on redeploy; and it is the nightly schedule's one place (`gradesync serve` reads it)."""
from __future__ import annotations

import asyncio
import subprocess

import pytest

from pipeline.pipeline_helpers import BIN, REPO

pytestmark = pytest.mark.slow


def test_prefect_deploy_all_registers_the_deployments(prefect_env):
    run = lambda *args: subprocess.run([str(BIN / "prefect"), *args], env=prefect_env, cwd=REPO,  # noqa: E731
                                       capture_output=True, text=True, timeout=300)
    pool = run("work-pool", "create", "gradesync-process", "--type", "process")
    assert pool.returncode == 0 or "already exists" in (pool.stdout + pool.stderr), pool.stderr
    for _ in range(2):                  # the second deploy is a redeploy: Prefect warns about some settings then
        deploy = run("--no-prompt", "deploy", "--all")
        assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
        said = deploy.stdout + deploy.stderr
        assert "Warning" not in said and "deprecated" not in said.lower(), said[-3000:]

    async def read():
        from prefect.client.orchestration import get_client
        async with get_client() as client:
            return {d.name: d for d in await client.read_deployments()}

    import os
    old = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = prefect_env["PREFECT_API_URL"]
    try:
        from prefect.settings import PREFECT_API_URL, temporary_settings
        with temporary_settings(updates={PREFECT_API_URL: prefect_env["PREFECT_API_URL"]}):
            deployments = asyncio.run(read())
    finally:
        if old is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = old
    assert {"nightly-audit", "audit-batch", "course-audit", "resync"} <= set(deployments)
    assert deployments["audit-batch"].schedules == [] and deployments["audit-batch"].work_pool_name == "gradesync-process"
    nightly = deployments["nightly-audit"]
    assert nightly.work_pool_name == "gradesync-process"
    schedule = nightly.schedules[0].schedule
    assert schedule.cron == "0 2 * * *" and schedule.timezone == "UTC"
    from cli.serve import nightly_schedule
    assert (nightly_schedule().cron, nightly_schedule().timezone) == (schedule.cron, schedule.timezone)
    assert deployments["course-audit"].schedules == []
    assert deployments["course-audit"].entrypoint == "flows/audit.py:course_audit"
