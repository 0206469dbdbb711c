"""`gradesync sandbox export --world N DIR`, then a separately started `gradesync sandbox serve --world N
--keys DIR`: the server accepts the exported keys (each world build makes fresh keys, so without --keys
every token request is refused)."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from gradesync.settings import load_settings
from lti_client import LtiClient, LtiError

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port: int, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen([str(BIN / "gradesync"), "sandbox", "serve", "--world", "5", "--size", "tiny",
                             "--port", str(port), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "Ctrl-C to stop" in line or proc.poll() is not None:
            break
    return proc


async def _read_grants(config: Path) -> dict[str, str]:
    out = {}
    for reg in load_settings(config).platforms:
        async with LtiClient(reg) as client:
            try:
                await client.read_grant()
                out[reg.name] = "ok"
            except LtiError as e:
                out[reg.name] = e.info.message
    return out


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_a_separately_started_server_accepts_the_exported_keys(tmp_path: Path):
    port = _free_port()
    out = tmp_path / "world"
    done = subprocess.run([str(BIN / "gradesync"), "sandbox", "export", "--world", "5", "--size", "tiny",
                           "--base-url", f"http://127.0.0.1:{port}", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"--port {port} --keys {out}" in done.stdout                  # the export says how to serve it
    assert (out / "keys" / ".gitignore").read_text() == "*\n"             # private keys stay out of git
    config = out / "gradesync.toml"

    fresh = _serve(port)
    try:
        refused = asyncio.run(_read_grants(config))
    finally:
        _stop(fresh)
    assert refused and all(v != "ok" for v in refused.values()), refused     # the bug of issue 14, kept visible

    served = _serve(port, "--keys", str(out))
    try:
        grants = asyncio.run(_read_grants(config))
    finally:
        _stop(served)
    assert grants and all(v == "ok" for v in grants.values()), grants


def test_keys_of_another_world_are_named(tmp_path: Path):
    (tmp_path / "keys").mkdir()
    done = subprocess.run([str(BIN / "gradesync"), "sandbox", "serve", "--world", "5", "--size", "tiny",
                           "--port", "0", "--keys", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "no key for registration" in done.stderr
