"""Benchmark: how long support staff wait for an on-demand audit of one course — `gradesync audit --course
P/C` as a process, wall time from the shell — with the warm process (cli/warm.py) and without it.

    .venv/bin/python bench/ondemand.py [--runs 3]

The demo world (seed 7) is served by `bench/sandbox_proc.py` in its own process (no added latency),
exported and imported; the course is the demo's course nearest 25 learners × 5 items. Two cases, each with
its own state folder (so its own warm process) and PREFECT_HOME (migrated before the clock starts):
- with a server: a `prefect server start` reachable through PREFECT_API_URL. The first audit runs in its
  own process and starts the warm process; once that is ready, one unmeasured warm-up, then the median
  of `runs` audits it serves: `course_seconds_with_server` (bound 5 s).
- no server (no PREFECT_API_URL): the first, cold audit (its temporary server, then the warm process
  starts and keeps its own temporary server), then the median of `runs` served after one warm-up:
  `course_seconds_no_server` (bound 10 s); the cold first run is reported beside it.
The peer of each case, measured in the same run: the same audit with `--no-warm` (median of `runs`; in
the no-server case before any warm process exists, so two temporary servers never share one database).
Each served run is checked to have been served by the warm process (its log names the audit run).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from extraction import SandboxProcess  # noqa: E402

CLI = str(Path(sys.executable).with_name("gradesync"))
PREFECT = str(Path(sys.executable).with_name("prefect"))
BOUND_WITH_SERVER_S, BOUND_NO_SERVER_S = 5.0, 10.0
SHAPE = (25, 5)          # learners × items of a demo-size course (issue 13)
READY_S = 300.0


def pick_course(seed: int) -> tuple[str, dict]:
    """PLATFORM/CONTEXT_ID of the demo course nearest SHAPE (registrations with the score scope)."""
    from sandbox_lms.worlds import build_world

    world = build_world(seed, "demo")
    shapes = [(abs(len(c.members) * len(c.line_items) - SHAPE[0] * SHAPE[1]), f"{reg.name}/{c.context_id}",
               {"members": len(c.members), "items": len(c.line_items)})
              for reg in world.state.registrations.values() if reg.name.endswith("-main")
              for c in reg.courses.values()]
    _, course, shape = min(shapes)
    return course, shape


def _audit(env: dict, toml: Path, course: str, out: Path, *extra: str) -> tuple[float, dict]:
    """One `gradesync audit --course` as a process: (wall seconds, its JSON export)."""
    t0 = time.perf_counter()
    done = subprocess.run([CLI, "audit", "--config", str(toml), "--course", course, "--no-alerts", "--json",
                           str(out), *extra], env=env, cwd=out.parent, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode not in (0, 3):
        raise RuntimeError(f"audit failed ({done.returncode}): {done.stdout[-1500:]} {done.stderr[-1500:]}")
    return seconds, json.loads(out.read_text())


@contextlib.contextmanager
def _environ(env: dict):
    """This process's environment as `env` for a while (so cli.warm_client sees that state folder)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _wait_warm(env: dict) -> float:
    """Seconds until the warm process of `env` answers."""
    from cli import warm_client as wc

    t0 = time.perf_counter()
    with _environ(env):
        while wc.ask({"op": "status"}) is None:
            if time.perf_counter() - t0 > READY_S:
                raise RuntimeError(f"no warm process after {READY_S:g} s: {wc.log_path().read_text()[-2000:]}")
            time.sleep(0.2)
    return time.perf_counter() - t0


def _stop_warm(env: dict) -> None:
    """Stop the warm process of `env` (its process group, the temporary server with it)."""
    from cli import warm_client as wc

    with _environ(env):
        pid = wc.holder_pid()
    if pid is None:
        return
    subprocess.run([CLI, "warm", "stop"], env=env, capture_output=True, timeout=120)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)       # whatever is left of its group


def _served(env: dict, run_id: int) -> bool:
    from cli import warm_client as wc

    with _environ(env):
        return f"served audit run {run_id} " in wc.log_path().read_text()


def measure(env: dict, toml: Path, course: str, work: Path, runs: int, peer_first: bool) -> dict:
    """The first audit (starts the warm process), the served median, and the --no-warm peer's median."""
    work.mkdir()
    out = work / "run.json"

    def peer() -> list[float]:
        return [round(_audit(env, toml, course, out, "--no-warm")[0], 2) for _ in range(runs)]

    peers = peer() if peer_first else []
    try:
        first_s, _ = _audit(env, toml, course, out)
        ready_s = _wait_warm(env)
        warm_up_s, _ = _audit(env, toml, course, out)
        served = []
        for _ in range(runs):
            seconds, data = _audit(env, toml, course, out)
            if not _served(env, data["run_id"]):
                raise RuntimeError(f"audit run {data['run_id']} was not served by the warm process")
            served.append(round(seconds, 2))
        if not peer_first:
            peers = peer()
    finally:
        _stop_warm(env)
    return {"seconds": round(statistics.median(served), 2), "runs_s": served, "warm_up_s": round(warm_up_s, 2),
            "first_cold_s": round(first_s, 2), "warm_ready_after_first_s": round(ready_s, 1),
            "peer_no_warm_s": round(statistics.median(peers), 2), "peer_runs_s": peers,
            "speedup_vs_peer": round(statistics.median(peers) / statistics.median(served), 1)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def prefect_server(env: dict, home: Path):
    """A `prefect server start` on a free port; the environment pointing at it."""
    port = _free_port()
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, cwd=home, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    try:
        import httpx

        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not start: {(home / 'server.log').read_text()[-1500:]}")
            time.sleep(0.5)
        yield {**env, "PREFECT_API_URL": url}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def run(seed: int = 7, runs: int = 3) -> dict:
    """Serve + import the demo world; measure the on-demand audit of one course in both cases."""
    course, shape = pick_course(seed)
    with tempfile.TemporaryDirectory(prefix="gradesync-bench-ondemand-") as tmp:
        root = Path(tmp)
        out = root / "export"
        base = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        base.update(PREFECT_LOGGING_LEVEL="WARNING", PREFECT_SERVER_ANALYTICS_ENABLED="false",
                    GRADESYNC_WARM="on", GRADESYNC_LOG_FILE=str(root / "gradesync.log"))
        with SandboxProcess(out, "--size", "demo", "--seed", str(seed), "--full-export"):
            toml = out / "gradesync.toml"
            with toml.open("a", encoding="utf-8") as fh:
                fh.write(f'\n[database]\nurl = "sqlite:///{root / "gradesync.db"}"\n'
                         f'\n[audit]\nreport_dir = "{root / "reports"}"\n')
            imp = subprocess.run([CLI, "--config", str(toml), "import", str(out)], env=base, cwd=root,
                                 capture_output=True, text=True)
            if imp.returncode not in (0, 2):
                raise RuntimeError(f"import failed ({imp.returncode}): {imp.stderr[-1500:]}")
            cases = {}
            for name in ("no_server", "with_server"):
                home = root / f"prefect-{name}"
                home.mkdir()
                env = {**base, "PREFECT_HOME": str(home), "GRADESYNC_STATE_DIR": str(root / f"state-{name}")}
                subprocess.run([PREFECT, "server", "database", "upgrade", "-y"], env=env, check=True,
                               capture_output=True, cwd=root)
                if name == "no_server":
                    cases[name] = measure(env, toml, course, root / name, runs, peer_first=True)
                else:
                    with prefect_server(env, home) as with_api:
                        cases[name] = measure(with_api, toml, course, root / name, runs, peer_first=False)
    w, n = cases["with_server"], cases["no_server"]
    return {"course": course, "course_shape": shape, "runs": runs,
            "course_seconds_with_server": w["seconds"], "bound_with_server_s": BOUND_WITH_SERVER_S,
            "course_seconds_no_server": n["seconds"], "bound_no_server_s": BOUND_NO_SERVER_S,
            "with_server": w, "no_server": n}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    print(json.dumps(run(runs=ap.parse_args().runs), indent=2))
