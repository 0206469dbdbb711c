"""The caller's side of the warm process (cli/warm.py): where it listens, whom it serves, asking it for an
audit, and starting one in the background. Light on purpose: imported by every `gradesync audit`, so only
the standard library here.

One warm process per user (per state folder): a Unix socket `warm/warm.sock` (folder 0700, socket 0600)
and a lock file `warm/warm.lock` that the process holds while it lives (it holds its pid), so two audits
that both find none start only one. Protocol: one JSON line per connection each way.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from cli.errors import CliError, state_dir

WARM_ENV = "GRADESYNC_WARM"               # "off": never use nor start a warm process (the tests' default)
IDLE_ENV = "GRADESYNC_WARM_IDLE_S"        # seconds without a request before it stops itself
DEFAULT_IDLE_S = 900.0
ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("cli", "flows", "tasks", "gradesync", "lti_client", "models")
STATUS_TIMEOUT_S = 5.0


def warm_dir() -> Path:
    return state_dir() / "warm"


def socket_path() -> Path:
    return warm_dir() / "warm.sock"


def lock_path() -> Path:
    return warm_dir() / "warm.lock"


def log_path() -> Path:
    """Where the warm process writes what it does (and its stdout/stderr)."""
    return warm_dir() / "warm.log"


def enabled() -> bool:
    return os.environ.get(WARM_ENV, "").strip().lower() not in ("off", "0", "false", "no")


def idle_seconds() -> float:
    try:
        return float(os.environ.get(IDLE_ENV) or DEFAULT_IDLE_S)
    except ValueError:
        return DEFAULT_IDLE_S


def identity() -> dict[str, str | None]:
    """What a warm process and its caller must share: the Prefect API its flow runs go to (with none,
    the temporary server of PREFECT_HOME), and the code and interpreter that run them."""
    env = os.environ
    api = env.get("PREFECT_API_URL") or None
    return {"prefect_api_url": api, "prefect_home": None if api else env.get("PREFECT_HOME") or None,
            "code_root": str(ROOT), "python": sys.executable}


def code_fingerprint(root: Path = ROOT) -> float:
    """The newest modification time of the code a warm process would load (its .py files): a warm
    process whose start is older than this runs old code, and refuses."""
    newest = 0.0
    for name in CODE_DIRS:
        for path in (root / name).rglob("*.py"):
            try:
                newest = max(newest, path.stat().st_mtime)
            except OSError:         # a file removed while we walk
                continue
    return newest


def ask(request: dict, timeout: float | None = STATUS_TIMEOUT_S) -> dict | None:
    """The warm process's answer to `request`, or None when none listens here. An audit waits
    (timeout None) as long as the run takes; a connection that closes without an answer raises."""
    path = socket_path()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError, OSError):
            return None
        sock.sendall(json.dumps(request).encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    finally:
        sock.close()
    data = b"".join(chunks)
    if not data:
        raise CliError(f"the warm process ended without answering (its log: {log_path()}); "
                       "`gradesync audit --no-warm` runs the audit in its own process")
    return json.loads(data)


def holder_pid() -> int | None:
    """The pid of the warm process holding the lock (starting or serving), or None."""
    try:
        fd = os.open(lock_path(), os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else None
    finally:
        os.close(fd)        # closing releases a lock we took
    return None


def make_warm_dir() -> Path:
    """The warm folder, only the user's (0700)."""
    d = warm_dir()
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    return d


def start_in_background() -> int:
    """Start a warm process detached from this one (its own session; output to the warm log); its pid.
    It exits at once if another one holds the lock."""
    make_warm_dir()
    with log_path().open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "cli.warm"], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT, env=dict(os.environ))
    return proc.pid
