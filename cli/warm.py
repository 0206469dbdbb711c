"""The warm process: a long-lived per-user process that keeps Prefect, the audit flow, Great Expectations
and pandas loaded (a cold `gradesync audit` spends most of its time importing them and starting
Prefect) and runs on-demand audits in-process, each a real `course-audit` flow run.

    python -m cli.warm          (started by `gradesync audit` in the background; `gradesync warm status|stop`)

- It serves only callers with its own Prefect identity, code and interpreter (cli/warm_client.identity);
  with no PREFECT_API_URL its first Prefect call starts the temporary server, which then lives as long as
  this process, so every later audit reuses it.
- Runs are serialized; each runs in the caller's working folder with the caller's environment
  (GRADESYNC_*, the webhook variables …; Prefect's own settings stay this process's), and what it prints
  goes back to the caller.
- It stops itself after GRADESYNC_WARM_IDLE_S seconds without a request (default 900), on
  `gradesync warm stop` or SIGTERM, and when the code on disk is newer than the code it loaded (it
  answers "stale" and exits; the caller then runs the audit itself and starts a fresh one).
"""
from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import json
import os
import signal
import sys
import time
import traceback
from datetime import datetime, timezone
from typing import Any

import typer

from cli import warm_client as wc

app = typer.Typer(help="The warm process that serves on-demand audits in seconds.", no_args_is_help=True,
                  add_completion=False)


def _log(message: str) -> None:
    """One line in the warm log (this process's stdout goes there)."""
    print(f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} warm[{os.getpid()}] {message}", flush=True)


class WarmProcess:
    """The serving state: who it serves, the code it loaded, when it was last used, one run at a time."""

    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self.identity = wc.identity()
        self.fingerprint = wc.code_fingerprint()     # before importing: code saved later is newer
        self.started = time.time()
        self.last_used = time.monotonic()
        self.served = 0
        self.busy = False
        self.run_lock = asyncio.Lock()
        self.stop = asyncio.Event()
        self.stop_reason = ""
        self.answering: set[asyncio.Task] = set()     # connections not yet answered

    def status(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "started": self.started, "served": self.served, "busy": self.busy,
                "idle_s": self.idle_s, "idle_for_s": round(time.monotonic() - self.last_used, 1),
                "identity": self.identity, "stale": wc.code_fingerprint() > self.fingerprint}

    def shut(self, reason: str) -> None:
        if not self.stop.is_set():
            self.stop_reason = reason
            self.stop.set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self.answering.add(task)
        try:
            request = json.loads(await reader.readline() or b"{}")
            answer = await self.answer(request)
            writer.write(json.dumps(answer, default=str).encode() + b"\n")
            await writer.drain()
        except Exception as e:  # noqa: BLE001 - a bad request must not end the process
            _log(f"request failed: {type(e).__name__}: {e}")
        finally:
            writer.close()
            self.answering.discard(task)

    async def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "status":
            return self.status()
        if op == "stop":
            self.shut("asked to stop")
            return {"stopping": True, "pid": os.getpid()}
        if op != "audit":
            return {"error": f"unknown request {op!r}"}
        if request.get("identity") != self.identity:
            _log(f"refused a caller with another Prefect API / code: {request.get('identity')}")
            return {"refused": "other", "identity": self.identity}
        if wc.code_fingerprint() > self.fingerprint:
            self.shut("the code on disk changed since it started (stale)")
            return {"refused": "stale"}
        async with self.run_lock:
            self.busy = True
            try:
                return await self.audit(request)
            finally:
                self.busy, self.last_used = False, time.monotonic()
                self.served += 1

    async def audit(self, request: dict[str, Any]) -> dict[str, Any]:
        """One course-audit flow run in the caller's folder and environment; its outcome, or the error
        worded as the CLI's error boundary words it (traceback in the caller's log file)."""
        from cli.errors import explain, record
        from flows.audit import course_audit

        t0 = time.perf_counter()
        saved_env, saved_cwd = dict(os.environ), os.getcwd()
        out, err = io.StringIO(), io.StringIO()
        answer: dict[str, Any]
        try:
            os.environ.update({k: v for k, v in request["env"].items() if not k.startswith("PREFECT_")})
            for k in [k for k in os.environ if k not in request["env"] and not k.startswith("PREFECT_")]:
                del os.environ[k]
            os.chdir(request["cwd"])
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                outcome = await course_audit(platforms=request["platforms"], courses=request["courses"],
                                             activities=request["activities"], alerts=request["alerts"],
                                             config=request["config"])
            answer = {"outcome": outcome}
            _log(f"served audit run {outcome['run_id']} ({outcome['state']}, {outcome['findings']} finding(s)) "
                 f"in {time.perf_counter() - t0:.2f} s")
        except Exception as e:  # noqa: BLE001 - every failure goes back to the caller, worded
            message, worth_logging = explain(e)
            path = record(e) if worth_logging else None
            answer = {"error": message, "problems": list(getattr(e, "problems", None) or [message]),
                      "log": str(path) if path else None, "traceback": "".join(traceback.format_exception(e))}
            _log(f"audit failed after {time.perf_counter() - t0:.2f} s: {message}")
        finally:
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
        return {**answer, "stdout": out.getvalue(), "stderr": err.getvalue(), "pid": os.getpid()}

    async def watch_idle(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=min(1.0, self.idle_s / 4))
            if not self.busy and time.monotonic() - self.last_used > self.idle_s:
                self.shut(f"idle for {self.idle_s:g} s")


async def warm_up() -> None:
    """Load what an audit needs (Prefect, the flow, pandas, Great Expectations) and reach the Prefect API
    — with no PREFECT_API_URL this starts the temporary server that later audits reuse."""
    from cli.common import quiet_prefect_defaults
    from cli.errors import route_library_logs_to_file

    quiet_prefect_defaults()
    import flows.audit  # noqa: F401
    from gradesync.audit.validate import validate_run
    from gradesync.report import render  # noqa: F401
    from prefect.client.orchestration import get_client

    route_library_logs_to_file()
    validate_run([], {})         # imports GX and builds its context once: the first audit does not
    async with get_client() as client:
        await client.api_healthcheck()


async def serve() -> int:
    """Hold the lock, warm up, listen until idle, stale, asked to stop or terminated."""
    wc.make_warm_dir()
    lock_fd = os.open(wc.lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        _log("another warm process holds the lock: not starting")
        os.close(lock_fd)
        return 0
    os.ftruncate(lock_fd, 0)
    os.pwrite(lock_fd, str(os.getpid()).encode(), 0)
    warm = WarmProcess(wc.idle_seconds())
    _log(f"starting for {warm.identity['prefect_api_url'] or 'a temporary Prefect server'}")
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, warm.shut, f"signal {sig.name}")
    t0 = time.perf_counter()
    await warm_up()
    path = wc.socket_path()
    path.unlink(missing_ok=True)            # a socket left by a process that died: we hold the lock
    old_umask = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(warm.handle, path=str(path))
    finally:
        os.umask(old_umask)
    path.chmod(0o600)
    bound = path.stat().st_ino
    warm.last_used = time.monotonic()
    _log(f"ready in {time.perf_counter() - t0:.1f} s on {path} (stops after {warm.idle_s:g} s idle)")
    idle = asyncio.create_task(warm.watch_idle())
    await warm.stop.wait()
    server.close()
    with contextlib.suppress(OSError):
        if path.stat().st_ino == bound:     # never remove a newer process's socket
            path.unlink()
    idle.cancel()
    if warm.answering:                      # a run in progress finishes, and every answer is sent
        await asyncio.wait(set(warm.answering))
    _log(f"stopped: {warm.stop_reason} after serving {warm.served} request(s)")
    os.close(lock_fd)
    return 0


# ------------------------------------------------------------------ `gradesync warm status|stop`

@app.command("status")
def status() -> None:
    """Show the warm process of this user (pid, Prefect API, audits served, idle time)."""
    from cli.common import console

    answer = wc.ask({"op": "status"})
    if answer is None:
        pid = wc.holder_pid()
        console.print(f"warm process {pid} is starting (log: {wc.log_path()})" if pid else
                      "no warm process: the next `gradesync audit` starts one", highlight=False, soft_wrap=True)
        return
    api = answer["identity"]["prefect_api_url"] or "temporary Prefect server"
    doing = "busy" if answer["busy"] else f"idle for {answer['idle_for_s']:g} s"
    stale = "; stale (code changed)" if answer["stale"] else ""
    console.print(f"warm process {answer['pid']}: Prefect {api}; {answer['served']} request(s) served; {doing} "
                  f"(stops after {answer['idle_s']:g} s idle){stale}; log {wc.log_path()}",
                  highlight=False, soft_wrap=True)


@app.command("stop")
def stop() -> None:
    """Stop the warm process of this user (it finishes a run in progress first)."""
    from cli.common import console

    answer = wc.ask({"op": "stop"})
    pid = answer["pid"] if answer else wc.holder_pid()
    if pid is None:
        console.print("no warm process")
        return
    if answer is None:                      # still starting: it listens to nothing yet
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while wc.holder_pid() == pid and time.monotonic() < deadline:
        time.sleep(0.1)
    console.print(f"warm process {pid} stopped" if wc.holder_pid() != pid else
                  f"warm process {pid} is still finishing a run", highlight=False)


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(serve()))
    except Exception:   # noqa: BLE001 - the log is the only place anyone sees this process's trouble
        _log("crashed:\n" + traceback.format_exc())
        sys.exit(1)
