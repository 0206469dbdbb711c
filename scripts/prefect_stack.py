"""The production stack on this machine, started and stopped in one place (issue 12 §6): `prefect server
start` (on PostgreSQL at 127.0.0.1:5432 when it answers, else on SQLite), the process work pool,
`prefect --no-prompt deploy --all` from prefect.yaml, and process workers named by
GRADESYNC_WORKER_NAME. Used by tests/production/test_work_pool.py and bench/night.py.

    with prefect_stack(tmp_path, workers=("w1", "w2"), limit=2) as stack:
        stack.env["PREFECT_API_URL"], stack.app_db ...
        stack.start_worker("w3", limit=2)

Everything started is stopped on exit, and the two databases it created on PostgreSQL are dropped.
Raises StackUnavailable when the stack cannot start here (the caller decides: skip or fail).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG = ("127.0.0.1", 5432)
POOL = "gradesync-process"
SERVER_START_S = 180.0       # `prefect server start` needs 15–60 s on 2 busy cores (migrations on first start)


class StackUnavailable(RuntimeError):
    """The stack could not start on this machine (no PostgreSQL when required, the server did not come up)."""


def pg_answers() -> bool:
    """Whether PostgreSQL accepts connections on 127.0.0.1:5432."""
    try:
        with socket.create_connection(PG, timeout=2):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_database(name: str, *, drop: bool = False) -> None:
    import psycopg

    with psycopg.connect(f"host={PG[0]} port={PG[1]} user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop:
            c.execute(f'CREATE DATABASE "{name}"')


@dataclass
class Stack:
    """A running stack: `env` for clients (PREFECT_API_URL set), the app database URL, the logs folder."""
    env: dict[str, str]
    api: str
    app_db: str
    logs: Path
    postgres: bool
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    _files: list = field(default_factory=list)

    def prefect(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        """Run the `prefect` CLI against this server; raises with its output when it fails."""
        r = subprocess.run([str(BIN / "prefect"), *args], env=self.env, cwd=REPO, capture_output=True, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"prefect {' '.join(args)}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        return r

    def _start(self, key: str, args: list[str], extra: dict[str, str]) -> subprocess.Popen:
        log = open(self.logs / f"{key}.log", "wb")
        self._files.append(log)
        p = subprocess.Popen([str(BIN / "prefect"), *args], env={**self.env, **extra}, cwd=REPO, stdout=log,
                             stderr=subprocess.STDOUT)
        self._procs[key] = p
        return p

    def start_worker(self, name: str, limit: int) -> None:
        """A process worker of the pool, named `name` (batches record it), taking `limit` flow runs at once."""
        self._start(f"worker-{name}", ["worker", "start", "--pool", POOL, "--name", name, "--limit", str(limit)],
                    {"GRADESYNC_WORKER_NAME": name})

    def stop_worker(self, name: str) -> None:
        self._stop(self._procs.pop(f"worker-{name}"))

    def worker_logs(self, tail: int = 3000) -> str:
        """The workers' log tails (for an assertion message)."""
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-tail:]}"
                         for p in sorted(self.logs.glob("worker-*.log")))

    @staticmethod
    def _stop(p: subprocess.Popen) -> None:
        p.terminate()
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def stop_all(self) -> None:
        for key in reversed(list(self._procs)):
            self._stop(self._procs.pop(key))
        for f in self._files:
            f.close()


@contextmanager
def prefect_stack(workdir: Path, *, workers: tuple[str, ...] = ("w1", "w2"), limit: int = 2,
                  require_postgres: bool = False) -> Iterator[Stack]:
    """Server, work pool, deployments and `workers` (each `--limit limit`); stopped and cleaned on exit.
    PostgreSQL for the Prefect server and the app database when it answers (required with
    `require_postgres`), else SQLite files in `workdir`."""
    postgres = pg_answers()
    if require_postgres and not postgres:
        raise StackUnavailable("no PostgreSQL on 127.0.0.1:5432 for the Prefect server")
    workdir.mkdir(parents=True, exist_ok=True)
    home = workdir / "prefect-home"
    home.mkdir(exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    prefect_db, app_db = f"gs_prefect_{tag}", f"gs_app_{tag}"
    if postgres:
        _pg_database(prefect_db)
        _pg_database(app_db)
        server_db = f"postgresql+asyncpg://postgres@{PG[0]}:{PG[1]}/{prefect_db}"
        app_url = f"postgresql+psycopg://postgres@{PG[0]}:{PG[1]}/{app_db}"
    else:
        server_db = f"sqlite+aiosqlite:///{workdir / 'prefect.db'}"
        app_url = f"sqlite:///{workdir / 'gradesync.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_LOGGING_LEVEL="WARNING", PREFECT_SERVER_LOGGING_LEVEL="WARNING")
    try:
        with prefect_server(env, workdir, database_url=server_db) as api:
            env["PREFECT_API_URL"] = api
            stack = Stack(env, api, app_url, workdir, postgres)
            try:
                stack.prefect(["work-pool", "create", POOL, "--type", "process"])
                stack.prefect(["--no-prompt", "deploy", "--all"], timeout=300)
                for name in workers:
                    stack.start_worker(name, limit)
                yield stack
            finally:
                stack.stop_all()
    finally:
        if postgres:
            from models import dispose_engine
            dispose_engine(app_url)
            for name in (prefect_db, app_db):
                try:
                    _pg_database(name, drop=True)
                except Exception:
                    pass


@contextmanager
def prefect_server(env: dict[str, str], log_dir: Path, *, database_url: str | None = None) -> Iterator[str]:
    """`prefect server start` on a free loopback port with `env` (its database `database_url`, else the
    SQLite file of env's PREFECT_HOME), healthy before yielding its API URL; stopped on exit. Its log is
    log_dir/server.log. Used by the stack above, the tests' session server and the benchmarks."""
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    if database_url:
        server_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    log_path = log_dir / "server.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                  env=server_env, cwd=log_dir, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_healthy(api, server, log_path)
            yield api
        finally:
            Stack._stop(server)


def _wait_healthy(api: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while True:
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise StackUnavailable(f"prefect server did not start: {log.read_text(errors='replace')[-1500:]}")
        time.sleep(0.5)
