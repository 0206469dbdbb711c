"""Start the sandbox LMS: in a background thread for tests and benchmarks, or in the foreground for the CLI.

Status-line reason phrases: Moodle 5.1 puts the text of a score refusal only in the HTTP reason phrase
(`HTTP/1.0 400 Incorrect score received{…}`, body `[]`; lti-platform-behavior.md §10), and ASGI has no
way to say a reason phrase. A profile that needs one sets the response header `x-sandbox-reason`
(REASON_HEADER); `ReasonPhraseH11Protocol` strips that header and writes its value as the reason phrase.
Without the header, uvicorn's standard phrase ("Bad Request", …) is sent as before.
"""
from __future__ import annotations

import socket
import threading
import time
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from sandbox_lms.app import build_app
from sandbox_lms.control import SandboxControl
from sandbox_lms.runtime import Counters, Runtime
from sandbox_lms.state import LmsState


REASON_HEADER = b"x-sandbox-reason"


class _ReasonPhraseConnection:
    """An h11.Connection whose `send` turns an `x-sandbox-reason` response header into the reason phrase."""

    def __init__(self, conn: h11.Connection) -> None:
        self._conn = conn

    def send(self, event: Any) -> bytes | None:
        if isinstance(event, h11.Response):
            reason = [v for k, v in event.headers if k.lower() == REASON_HEADER]
            if reason:
                headers = [(k, v) for k, v in event.headers if k.lower() != REASON_HEADER]
                event = h11.Response(status_code=event.status_code, headers=headers, reason=reason[-1],
                                     http_version=event.http_version)
        return self._conn.send(event)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class ReasonPhraseH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, able to send a profile's own reason phrase (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = _ReasonPhraseConnection(self.conn)      # type: ignore[assignment]


def _config(state: LmsState, runtime: Runtime, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(build_app(state, runtime), host=host, port=port, log_level="warning",
                          http=ReasonPhraseH11Protocol,
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
