"""The warm process (cli/warm.py) through the real CLI: the first `gradesync audit` runs in its own process
and starts one; the next is served by it — a real flow run on the session's Prefect server, the same
findings and exit code as `--no-warm`; it refuses a caller of another Prefect API and stale code, and
stops itself when idle. Every process these tests start is stopped in a `finally`."""
from __future__ import annotations

import json
import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from pipeline.pipeline_helpers import REPO, run_cli, serve_world

pytestmark = pytest.mark.slow
READY_S = 240          # warm-up imports GX and Prefect: tens of seconds on 2 busy cores


@contextmanager
def warm_state(tmp_path: Path, prefect_env: dict[str, str], monkeypatch, idle_s: float = 600):
    """The environment of a caller with the warm process turned on in a state folder of its own; on exit
    every warm process started there is stopped (SIGTERM, then SIGKILL), its whole process group."""
    state = tmp_path / "state"
    env = {**prefect_env, "GRADESYNC_WARM": "on", "GRADESYNC_STATE_DIR": str(state),
           "GRADESYNC_WARM_IDLE_S": str(idle_s), "GRADESYNC_LOG_FILE": str(tmp_path / "gradesync.log")}
    for key in ("GRADESYNC_STATE_DIR", "GRADESYNC_WARM_IDLE_S", "GRADESYNC_LOG_FILE", "PREFECT_API_URL",
                "PREFECT_HOME"):
        monkeypatch.setenv(key, env[key])          # so warm_client here sees the same folder and Prefect
    seen: set[int] = set()
    try:
        yield env, seen
    finally:
        from cli import warm_client as wc

        if (pid := wc.holder_pid()) is not None:
            seen.add(pid)
        for pid in seen:
            _stop(pid)


def _stop(pid: int) -> None:
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.2)


def wait_ready(seen: set[int], timeout: float = READY_S) -> dict:
    """The status of the warm process once it serves (its pid recorded for the clean-up)."""
    from cli import warm_client as wc

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (pid := wc.holder_pid()) is not None:
            seen.add(pid)
        status = wc.ask({"op": "status"})
        if status is not None:
            seen.add(status["pid"])
            return status
        time.sleep(0.5)
    raise AssertionError(f"no warm process became ready; log:\n{_log()[-3000:]}")


def _alive(pid: int) -> bool:
    """Running (a zombie child of this test process counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.2)
    raise AssertionError(f"warm process {pid} still runs; log:\n{_log()[-3000:]}")


def _log() -> str:
    from cli import warm_client as wc

    return wc.log_path().read_text() if wc.log_path().exists() else ""


def _findings(path: Path) -> tuple[list, dict]:
    data = json.loads(path.read_text())
    keys = sorted((f["category"], f["platform"], f["context_id"], f["resource_link_id"] or "", f["lms_user_id"] or "")
                  for f in data["findings"])
    return keys, data


def test_second_audit_is_served_warm_like_an_in_process_one(tmp_path, prefect_env, monkeypatch):
    from cli import warm_client as wc

    with warm_state(tmp_path, prefect_env, monkeypatch) as (env, seen), \
            serve_world(tmp_path, 5, "tiny", f"sqlite:///{tmp_path / 'gs.db'}") as served:
        reg = served.world.state.registrations["canvas-main"]
        course = f"canvas-main/{next(iter(reg.courses.values())).context_id}"
        args = ["audit", "--config", str(served.config), "--course", course, "--no-alerts"]

        cold = run_cli([*args, "--json", str(tmp_path / "cold.json")], env, tmp_path)
        assert cold.returncode in (0, 3), cold.stderr[-3000:]
        status = wait_ready(seen)
        assert status["identity"]["prefect_api_url"] == prefect_env["PREFECT_API_URL"] and status["served"] == 0
        assert (wc.warm_dir().stat().st_mode & 0o777) == 0o700
        assert (wc.socket_path().stat().st_mode & 0o777) == 0o600

        warm = run_cli([*args, "--json", str(tmp_path / "warm.json")], env, tmp_path)
        here = run_cli([*args, "--no-warm", "--json", str(tmp_path / "here.json")], env, tmp_path)
        assert warm.returncode == here.returncode == cold.returncode, warm.stderr[-3000:] + here.stderr[-3000:]
        warm_findings, warm_data = _findings(tmp_path / "warm.json")
        here_findings, here_data = _findings(tmp_path / "here.json")
        assert warm_findings == here_findings and warm_findings, "the warm run found something else"
        assert "Report: " in warm.stdout and "total" in warm.stdout

        # Served by the warm process (its log names the run), as a flow run the Prefect server holds.
        log = _log()
        assert f"served audit run {warm_data['run_id']} " in log
        assert f"served audit run {here_data['run_id']} " not in log
        assert wc.ask({"op": "status"})["served"] == 1
        import models as m

        with m.session_scope(m.make_engine(served.database_url)) as s:
            flow_run_id = s.get(m.AuditRun, warm_data["run_id"]).flow_run_id
        assert flow_run_id
        got = httpx.get(f"{prefect_env['PREFECT_API_URL']}/flow_runs/{flow_run_id}", timeout=10)
        assert got.status_code == 200 and got.json()["state_type"] == "COMPLETED"

        # A caller of another Prefect API is not served: it runs (here: fails to reach that API) itself.
        other = run_cli(args, {**env, "PREFECT_API_URL": "http://127.0.0.1:9/api"}, tmp_path, timeout=300)
        assert other.returncode == 1 and "cannot reach the Prefect API" in other.stderr, other.stderr[-2000:]
        assert "refused a caller with another Prefect API" in _log()
        assert wc.ask({"op": "status"})["served"] == 1 and wc.holder_pid() == status["pid"]

        # Code changed on disk since it started: it refuses ("stale") and exits; the caller audits itself
        # and starts a fresh warm process.
        touched = REPO / "cli" / "warm_client.py"
        before = touched.stat()
        try:
            os.utime(touched, (before.st_atime, time.time() + 5))
            stale = run_cli([*args, "--json", str(tmp_path / "stale.json")], env, tmp_path)
        finally:
            os.utime(touched, (before.st_atime, before.st_mtime))
        assert stale.returncode == here.returncode, stale.stderr[-3000:]
        wait_gone(status["pid"], 60)
        assert "stopped: the code on disk changed since it started (stale)" in _log()
        assert _findings(tmp_path / "stale.json")[0] == here_findings
        fresh = wait_ready(seen)
        assert fresh["pid"] != status["pid"]


def test_warm_process_stops_itself_when_idle(tmp_path, prefect_env, monkeypatch):
    from cli import warm_client as wc

    with warm_state(tmp_path, prefect_env, monkeypatch, idle_s=2) as (env, seen):
        seen.add(wc.start_in_background())
        status = wait_ready(seen)
        assert status["idle_s"] == 2
        wait_gone(status["pid"], 60)
        assert "stopped: idle for 2 s" in _log()
        assert wc.ask({"op": "status"}) is None and not wc.socket_path().exists() and wc.holder_pid() is None
