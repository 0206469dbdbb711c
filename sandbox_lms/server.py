"""Start the sandbox LMS: in a background thread for tests and benchmarks, or in the foreground for the CLI."""
from __future__ import annotations

import socket
import threading
import time

import uvicorn

from sandbox_lms.app import build_app
from sandbox_lms.control import SandboxControl
from sandbox_lms.runtime import Counters, Runtime
from sandbox_lms.state import LmsState


def _config(state: LmsState, runtime: Runtime, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(build_app(state, runtime), host=host, port=port, log_level="warning",
                          access_log=False, lifespan="off", timeout_graceful_shutdown=1,
                          backlog=512, timeout_keep_alive=30)


class RunningSandbox:
    """A sandbox server running in a background thread; a context manager (stops on exit)."""

    def __init__(self, state: LmsState, host: str, port: int) -> None:
        self.state = state
        self.runtime = Runtime()
        self.control = SandboxControl(state, self.runtime)
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say they are TCP;
        # without it Nagle + delayed ACK add ~40 ms to every response (uvicorn writes head and body apart).
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM,
                                   socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = host, self._sock.getsockname()[1]
        self._server = uvicorn.Server(_config(state, self.runtime, host, self.port))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"sandbox-lms-{self.port}", daemon=True)

    @property
    def base_url(self) -> str:
        """http://host:port of the server (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def counters(self) -> Counters:
        """Live request counters (per registration and endpoint kind; score POSTs per cell)."""
        return self.runtime.counters

    def start(self, timeout_s: float = 10.0) -> "RunningSandbox":
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("sandbox LMS failed to start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread (hanging requests are cut after ~1 s)."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> "RunningSandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sandbox(state: LmsState, host: str = "127.0.0.1", port: int = 0) -> RunningSandbox:
    """Serve `state` on host:port (0 = a free port) in a background thread; use as a context manager."""
    return RunningSandbox(state, host, port).start()


def serve_forever(state: LmsState, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve `state` in the foreground until interrupted (the `gradesync sandbox serve` command)."""
    uvicorn.Server(_config(state, Runtime(), host, port)).run()
