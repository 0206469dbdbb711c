"""A lighter network layer under httpx: HTTP/1.1 on asyncio protocols, responses parsed by httptools.

Why (issue 13): at 12 requests in flight and 20 ms latency the client has ~1.7 ms of event-loop time per
request for everything (HTTP, JSON, records). httpx's stock stack spends most of it below the API: httpcore's
pool bookkeeping, anyio streams and h11, a pure-Python HTTP parser. Here one `_Connection` per socket is an
asyncio protocol whose bytes go straight into httptools' C parser (llhttp, the parser of Node.js and uvicorn),
and `FastTransport` keeps idle connections per origin, at most `max_connections` lent out at once.

httpx stays the API: `FastTransport` is an `httpx.AsyncBaseTransport`; requests and responses are httpx's,
errors are httpx's (ConnectError, ReadTimeout, RemoteProtocolError, …) and the reason phrase and HTTP version
are in `response.extensions` as httpx's own transport puts them. A response is read whole before it is
returned (every caller reads it whole): its connection goes back to the pool, and its slot is freed, in the
callback that read its last byte (`Started`). Behind a proxy, httpx's own transport is used
(`proxy_configured`).
"""
from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
import typing
import urllib.request
from collections import deque

import httpx
import httptools

Key = tuple[bytes, bytes, int]
_DEFAULT_PORTS = {b"http": 80, b"https": 443}
_NO_BODY_STATUS = (204, 304)


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: writes a request, parses its response (httptools calls the `on_*` methods)."""

    def __init__(self, key: Key) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False                 # EOF, error or unexpected bytes: never reuse
        self.idle_since = 0.0
        # The exchange in progress: called once, synchronously, with None when its response is complete
        # or with the error that ended it (None: idle).
        self._settle: typing.Callable[[Exception | None], None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._last_read = 0.0
        self._read_timer: asyncio.TimerHandle | None = None
        self._reset()

    def _reset(self) -> None:
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.received = False               # any byte of this response yet
        self.headers_done = False
        self.head_only = False              # the request was a HEAD: the head is the whole answer
        self.until_eof = False              # no length, not chunked: the body ends with the connection
        self.complete = False
        self.reusable = False               # the server keeps the connection open after this response

    # ---- asyncio protocol -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._settle is None:            # bytes nobody asked for: the connection is out of step
            self.closed = True
            return
        self.received = True
        self._last_read = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if not self.complete:
                self._fail(httpx.RemoteProtocolError(f"malformed HTTP response: {exc}"))
                return
            self.close()                    # junk after a complete answer: the answer stands, the connection not
        if self.complete:
            # Settled here, at the last byte and after the parser returned, not when the waiting task
            # runs: the exchange's slot (and the client's) is free now, and the next request in line is
            # written on this connection before the loop runs anything else (issue 13).
            self._finish(None)

    def eof_received(self) -> bool:
        self._ended(None)
        return False                        # close our side too

    def connection_lost(self, exc: BaseException | None) -> None:
        self._ended(exc)
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def pause_writing(self) -> None:
        self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    # ---- httptools callbacks ----------------------------------------------------------------------
    def on_status(self, status: bytes) -> None:
        self.reason += status               # may come in pieces

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        status = self.parser.get_status_code()
        framed = any(name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self.headers)
        self.until_eof = not framed and status >= 200 and status not in _NO_BODY_STATUS
        if self.head_only:
            # llhttp cannot be told the response answers a HEAD: take the head, never reuse the connection.
            self.complete, self.closed = True, True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.complete:                   # a HEAD's body (or bytes after the answer): not ours
            return
        self.complete = True
        # Asked here: llhttp resets its flags once the message is done.
        self.reusable = not self.until_eof and self.parser.should_keep_alive()

    # ---- end of the connection --------------------------------------------------------------------
    def _ended(self, exc: BaseException | None) -> None:
        self.closed = True
        if self._settle is None:
            return
        if self.complete or (self.headers_done and self.until_eof and exc is None):
            self.complete = True            # the body was "everything until the server closed"
            self._finish(None)
        elif exc is not None:
            self._fail(httpx.ReadError(str(exc) or type(exc).__name__))
        elif not self.received:
            self._fail(httpx.RemoteProtocolError("Server disconnected without sending a response."))
        else:
            self._fail(httpx.RemoteProtocolError("peer closed connection without sending complete message body"))

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self._finish(exc)

    def _finish(self, exc: Exception | None) -> None:
        settle, self._settle = self._settle, None
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        if settle is not None:
            settle(exc)

    def _check_read(self, timeout: float) -> None:
        # One timer per response, re-armed from the last byte read: a read timeout is time without bytes.
        quiet = time.monotonic() - self._last_read
        if quiet >= timeout:
            self._fail(httpx.ReadTimeout("timed out waiting for the response"))
        elif self._settle is not None:
            self._read_timer = asyncio.get_running_loop().call_later(timeout - quiet, self._check_read, timeout)

    # ---- one exchange ----------------------------------------------------------------------------
    def usable(self, now: float, expiry: float | None) -> bool:
        """Idle, open, and not past the keep-alive expiry: may carry the next request."""
        return (not self.closed and self.transport is not None and not self.transport.is_closing()
                and (expiry is None or now - self.idle_since < expiry))

    def start(self, head: bytes, body: bytes, timeouts: dict[str, float | None], head_only: bool,
              settle: typing.Callable[[Exception | None], None]) -> None:
        """Write a request now (synchronously: the bytes are handed to the socket before this returns);
        `settle` is called once when its response is complete (None) or the exchange failed (the error)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            raise httpx.WriteError("connection closed")
        self._reset()
        self.head_only = head_only
        self._settle = settle
        self._last_read = time.monotonic()
        transport.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            transport.write(body)
        read_timeout = timeouts.get("read")
        if read_timeout is not None:
            self._read_timer = asyncio.get_running_loop().call_later(read_timeout, self._check_read, read_timeout)

    async def drained(self, timeout: float | None) -> None:
        """Wait until a large request body has left (the socket buffer drained), else a write timeout."""
        if self._drain is not None and self._settle is not None:
            try:
                async with asyncio.timeout(timeout):
                    await self._drain
            except TimeoutError:
                self._fail(httpx.WriteTimeout("timed out writing the request"))

    def keep_alive(self) -> bool:
        return not self.closed and self.reusable

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _key(url: httpx.URL) -> Key:
    scheme = url.raw_scheme
    return scheme, url.raw_host, url.port or _DEFAULT_PORTS.get(scheme, 80)


def _request_head(request: httpx.Request, content_length: int | None) -> bytes:
    lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), request.url.raw_path or b"/")]
    for name, value in request.headers.raw:
        lines.append(b"%s: %s\r\n" % (name, value))
    if content_length is not None and "content-length" not in request.headers:
        lines.append(b"Content-Length: %d\r\n" % content_length)
    lines.append(b"\r\n")
    return b"".join(lines)


def _encode(request: httpx.Request) -> tuple[bytes, bytes]:
    """The request's head and body bytes (the body read already: `request.content`)."""
    body = request.content
    if request.headers.get("transfer-encoding", "").lower() == "chunked":
        request.headers.pop("transfer-encoding")       # sent whole instead, with a length
    length = len(body) if body or request.method in ("POST", "PUT", "PATCH") else None
    return _request_head(request, length), body


ON_COMPLETE = "lti_client.on_complete"    # request extension: called once when the exchange ends (see Started)


class Started:
    """A request already written on a connection. When its answer's last byte is read (or the exchange
    fails), the connection goes back to the pool, the transport's slot is freed and the request's
    `ON_COMPLETE` extension is called, all synchronously, before the waiting task runs; `response()`
    then hands the answer over. `abort()` drops it (its owner was cancelled before it could wait)."""

    def __init__(self, pool: "FastTransport", conn: _Connection, request: httpx.Request,
                 timeouts: dict[str, float | None]) -> None:
        self._pool, self._conn, self._request, self._timeouts = pool, conn, request, timeouts
        self._settled = False
        self._outcome: asyncio.Future[httpx.Response] = asyncio.get_running_loop().create_future()

    def write(self, head: bytes, body: bytes) -> None:
        self._conn.start(head, body, self._timeouts, self._request.method == "HEAD", self._settle)

    def _settle(self, exc: Exception | None) -> None:
        if self._settled:
            return
        self._settled = True
        conn, request, outcome = self._conn, self._request, self._outcome
        if exc is None:
            parser = conn.parser
            response = httpx.Response(parser.get_status_code(), headers=conn.headers,
                                      stream=httpx.ByteStream(b"".join(conn.body)), request=request,
                                      extensions={"http_version": b"HTTP/" + parser.get_http_version().encode("ascii"),
                                                  "reason_phrase": conn.reason})
            self._pool._give_back(conn)
            if not outcome.done():
                outcome.set_result(response)
        else:
            conn.close()                     # out of step mid-exchange: never reused
            if isinstance(exc, httpx.TransportError):
                exc.request = request
            if not outcome.done():
                outcome.set_exception(exc)
                outcome.exception()          # retrieved: an aborted exchange's error is nobody's to raise
        self._pool._free_slot()
        on_complete = request.extensions.get(ON_COMPLETE)
        if on_complete is not None:
            on_complete()

    async def response(self) -> httpx.Response:
        try:
            await self._conn.drained(self._timeouts.get("write"))
            return await self._outcome
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if not self._settled:
            self._conn._fail(httpx.ReadError("request abandoned"))     # settles this exchange


class FastTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 connections per origin, reused while the server keeps them alive; at most
    `max_connections` requests at once (the client's limiter upstream normally keeps it below)."""

    def __init__(self, ssl_context: ssl.SSLContext | None, max_connections: int, max_keepalive: int,
                 keepalive_expiry: float | None) -> None:
        self._ssl, self._keep, self._expiry = ssl_context, max_keepalive, keepalive_expiry
        self._max, self._lent = max_connections, 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._idle: dict[Key, list[_Connection]] = {}

    async def _connect(self, url: httpx.URL, key: Key, sni: str | None, timeout: float | None) -> _Connection:
        loop = asyncio.get_running_loop()
        host = url.host
        tls = key[0] == b"https"
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(key), host, key[2], ssl=(self._ssl or default_tls()) if tls else None,
                    server_hostname=(sni or host) if tls else None)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{key[2]}") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        sock = conn.transport.get_extra_info("socket") if conn.transport is not None else None
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _take(self, key: Key) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.usable(now, self._expiry):
                return conn
            conn.close()
        return None

    def _give_back(self, conn: _Connection) -> None:
        idle = self._idle.setdefault(conn.key, [])
        if conn.keep_alive() and len(idle) < self._keep:
            conn.idle_since = time.monotonic()
            idle.append(conn)
        else:
            conn.close()

    # ---- requests in flight: at most `max_connections` -------------------------------------------
    def _try_slot(self) -> bool:
        if self._max and self._lent >= self._max:
            return False
        self._lent += 1
        return True

    async def _slot(self, request: httpx.Request, timeout: float | None) -> None:
        if self._try_slot():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter                 # _free_slot counted us in before waking us
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._free_slot()            # handed a slot just as the wait ended: give it back
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise httpx.PoolTimeout("no connection free in time", request=request) from None
            raise

    def _free_slot(self) -> None:
        self._lent -= 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._lent += 1
                waiter.set_result(None)
                break

    # ---- one request ------------------------------------------------------------------------------
    def begin(self, request: httpx.Request) -> "Started | None":
        """Write `request` now, synchronously, when a slot and an idle keep-alive connection are free (the
        client's limiter hands a freed slot to the next request this way, issue 13); else None: send it
        with `handle_async_request`."""
        url = request.url
        if url.raw_scheme not in _DEFAULT_PORTS or not self._try_slot():
            return None
        conn = self._take(_key(url))
        if conn is None:
            self._free_slot()
            return None
        started = Started(self, conn, request, request.extensions.get("timeout", {}))
        try:
            started.write(*_encode(request))
        except Exception:                    # a body to stream, a closed connection: the slow path decides
            conn.close()
            self._free_slot()
            return None
        return started

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.raw_scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}", request=request)
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        await request.aread()                # a streamed body is sent whole, with its length
        head, body = _encode(request)
        await self._slot(request, timeouts.get("pool"))
        try:
            key = _key(url)
            conn = self._take(key) or await self._connect(url, key, request.extensions.get("sni_hostname"),
                                                          timeouts.get("connect"))
            started = Started(self, conn, request, timeouts)
            try:
                started.write(head, body)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            self._free_slot()
            raise
        return await started.response()

    async def aclose(self) -> None:
        """Close every idle connection."""
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()


def proxy_configured() -> bool:
    """True when the environment names an HTTP(S) proxy: then httpx's own transport is used (it reads them)."""
    return bool({k for k in urllib.request.getproxies() if k in ("http", "https", "all")})


class ProxiedTransport(httpx.AsyncBaseTransport):
    """httpx's own client as a transport, for when the environment names a proxy: it applies HTTP(S)_PROXY,
    ALL_PROXY and NO_PROXY per URL. Never follows redirects."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._client = httpx.AsyncClient(limits=limits, follow_redirects=False, trust_env=True)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._client.send(request)

    async def aclose(self) -> None:
        await self._client.aclose()


_TLS: dict[tuple[str | None, str | None], ssl.SSLContext] = {}


def default_tls() -> ssl.SSLContext:
    """httpx's default TLS context (trusted roots, or SSL_CERT_FILE / SSL_CERT_DIR), made once per process
    and per those settings: loading the roots takes ~25 ms, the time of a hundred requests (issue 13)."""
    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    context = _TLS.get(key)
    if context is None:
        context = _TLS[key] = httpx.create_ssl_context()
    return context


def fast_transport(limits: httpx.Limits) -> FastTransport:
    """A `FastTransport` with httpx's TLS defaults (made at the first https connection) and `limits`."""
    return FastTransport(None, limits.max_connections or 0,
                         limits.max_keepalive_connections or (limits.max_connections or 100),
                         limits.keepalive_expiry)
