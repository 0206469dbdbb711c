"""Pipeline fixtures: one real Prefect server for the session (so each CLI run skips the ~12 s start of
a temporary server — stack-notes A.5), a sandbox world served over loopback, its export imported."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def prefect_env(tmp_path_factory) -> dict[str, str]:
    """Environment for subprocesses (and this process) pointing at a real, session-wide Prefect server."""
    home = tmp_path_factory.mktemp("prefect-home")
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_SERVER_LOGGING_LEVEL": "WARNING"}
    if os.environ.get("PREFECT_API_URL"):
        yield env
        return
    port = _free_port()
    log = open(home / "server.log", "wb")
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"prefect server did not start; log: {(home / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    env["PREFECT_API_URL"] = url
    try:
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


