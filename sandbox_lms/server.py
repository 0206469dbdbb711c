"""Start the sandbox LMS: in a background thread for tests and benchmarks, or in the foreground for the CLI.

Served by uvicorn's httptools protocol (C parser; h11's pure-Python parsing cost ~1 ms a request outside
the injected latency, issue 13), subclassed as `SandboxProtocol` for two things:

- Arrival stamp: the time a request's bytes reached `data_received` goes into its scope
  (app.ARRIVED_KEY), and injected latency counts from there.
- Status-line reason phrases: Moodle 5.1 puts the text of a score refusal only in the HTTP reason phrase
  (`HTTP/1.0 400 Incorrect score received{…}`, body `[]`; lti-platform-behavior.md §10), and ASGI has no
  way to say a reason phrase. A profile that needs one sets the response header `x-sandbox-reason`
  (REASON_HEADER); the server strips that header and writes its value's bytes, unchanged (UTF-8 from the
  moodle profile), as the reason phrase. Without the header, uvicorn's standard phrase ("Bad Request", …)
  is sent as before.
"""
from __future__ import annotations

import re
import socket
import threading
import time
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from sandbox_lms.app import ARRIVED_KEY, build_app
from sandbox_lms.control import SandboxControl
from sandbox_lms.runtime import Counters, Runtime
from sandbox_lms.state import LmsState


REASON_HEADER = b"x-sandbox-reason"
# RFC 9112 reason-phrase: HTAB, SP, VCHAR, obs-text (what uvicorn allows in a header value).
_BAD_REASON = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class _StatusLineSwap:
    """Stands in for a cycle's transport while uvicorn writes one response head (status line and headers
    in a single `write`), putting `line` where uvicorn's standard status line `standard` is."""

    def __init__(self, transport: Any, standard: bytes, line: bytes) -> None:
        self._transport, self._standard, self._line = transport, standard, line

    def write(self, data: bytes) -> None:
        if not data.startswith(self._standard):
            raise RuntimeError("uvicorn no longer writes the status line first: see sandbox_lms/server.py")
        self._transport.write(self._line + data[len(self._standard):])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _ReasonPhraseCycle(RequestResponseCycle):
    """uvicorn's httptools request/response cycle, sending an `x-sandbox-reason` header as the reason phrase.

    uvicorn writes the head from its module-level STATUS_LINE table; rather than copy its `send` (content
    length, keep-alive and chunking rules) or patch that table for every server in the process, the
    header is stripped and the one head `write` of this response gets the phrase swapped in."""

    async def send(self, message: Any) -> None:
        if message["type"] == "http.response.start" and not self.response_started:
            headers = message.get("headers") or ()
            reason = [v for k, v in headers if k.lower() == REASON_HEADER]
            if reason:
                if _BAD_REASON.search(reason[-1]):
                    raise RuntimeError("Invalid HTTP reason phrase.")
                status = message["status"]
                message = {**message, "headers": [(k, v) for k, v in headers if k.lower() != REASON_HEADER]}
                transport = self.transport
                self.transport = _StatusLineSwap(transport, STATUS_LINE[status],      # type: ignore[assignment]
                                                 b"HTTP/1.1 %d %s\r\n" % (status, reason[-1]))
                try:
                    await super().send(message)
                finally:
                    self.transport = transport
                return
        await super().send(message)


class SandboxProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the arrival stamp and reason phrases (see the module docstring)."""

    def data_received(self, data: bytes) -> None:
        arrived = time.perf_counter()
        super().data_received(data)
        # A request whose body comes in later segments keeps its first stamp (setdefault); the next
        # request on a keep-alive connection has a new scope. Pipelined requests in one segment: only
        # the last is stamped, the others count from dispatch (app.py's fallback).
        if self.scope is not None:
            self.scope.setdefault(ARRIVED_KEY, arrived)      # type: ignore[misc]

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        # uvicorn makes the request's cycle by name inside this method; giving the new cycle our subclass
        # (its task has not run yet) beats copying the method. Only the class changes: no new state.
        if self.cycle is not None and type(self.cycle) is RequestResponseCycle:
            self.cycle.__class__ = _ReasonPhraseCycle


def _config(state: LmsState, runtime: Runtime, host: str, port: int, precise: bool = False) -> uvicorn.Config:
    # precise: a select() loop whose timers end on time (sandbox_lms/latency.py), for a sandbox in its own process.
    return uvicorn.Config(build_app(state, runtime), host=host, port=port, log_level="warning",
                          loop="sandbox_lms.latency:precise_loop" if precise else "auto",
                          http=SandboxProtocol,
                          access_log=False, lifespan="off", timeout_graceful_shutdown=1,
                          backlog=512, timeout_keep_alive=30)


class RunningSandbox:
    """A sandbox server running in a background thread; a context manager (stops on exit)."""

    def __init__(self, state: LmsState, host: str, port: int, precise_timers: bool = False) -> None:
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
        self._server = uvicorn.Server(_config(state, self.runtime, host, self.port, precise_timers))
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


def start_sandbox(state: LmsState, host: str = "127.0.0.1", port: int = 0, *,
                  precise_timers: bool = False) -> RunningSandbox:
    """Serve `state` on host:port (0 = a free port) in a background thread; use as a context manager."""
    return RunningSandbox(state, host, port, precise_timers).start()


def serve_forever(state: LmsState, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve `state` in the foreground until interrupted (the `gradesync sandbox serve` command)."""
    uvicorn.Server(_config(state, Runtime(), host, port)).run()
