"""A lighter network layer under httpx: httpcore's HTTP/1.1 pool on plain asyncio sockets.

Why (issue 13): at 12 requests in flight and 20 ms latency the client has ~1.7 ms of event-loop time per
request. Profiling the stock stack showed a large share spent not on HTTP but on pool bookkeeping:
httpcore's pool re-scans every connection against every queued request on each change (quadratic, ~100
`is_idle` calls per request at 12 connections) and asks anyio, per idle connection, whether its socket
is readable (an attribute table rebuilt, then getpeername + poll syscalls). Here:
- `AsyncioStream`: a connection knows it for free — the asyncio protocol is told when bytes or EOF arrive;
- `LeanPool`: idle connections per origin in a list, at most `max_connections` lent out at a time.
httpx stays the API (its transport maps errors as before); httpcore still speaks HTTP/1.1 per connection
(reason phrases, keep-alive, TLS via `loop.start_tls`).
"""
from __future__ import annotations

import asyncio
import socket
import ssl
import typing
import urllib.request

import httpcore
import httpx


class _Protocol(asyncio.Protocol):
    """Buffers what the peer sends; wakes the one reader waiting for it."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def pause_writing(self) -> None:
        self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait_readable(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One TCP (or TLS) connection as httpcore wants it."""

    def __init__(self, protocol: _Protocol) -> None:
        self._p = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        p = self._p
        if not p.buffer and not p.eof:
            try:
                async with asyncio.timeout(timeout):
                    while not p.buffer and not p.eof:
                        await p.wait_readable()
            except TimeoutError:
                raise httpcore.ReadTimeout("timed out reading") from None
        if not p.buffer:
            if p.error is not None:
                raise httpcore.ReadError(str(p.error))
            return b""
        data = bytes(p.buffer[:max_bytes])
        del p.buffer[:max_bytes]
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        p = self._p
        if not buffer:
            return
        if p.transport is None or p.transport.is_closing():
            raise httpcore.WriteError("connection closed")
        p.transport.write(buffer)
        if p._drain is not None:
            try:
                async with asyncio.timeout(timeout):
                    await p._drain
            except TimeoutError:
                raise httpcore.WriteTimeout("timed out writing") from None

    async def aclose(self) -> None:
        if self._p.transport is not None:
            self._p.transport.close()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(self._p.transport, self._p, ssl_context,
                                                 server_hostname=server_hostname)
        except TimeoutError:
            await self.aclose()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from None
        except (OSError, ssl.SSLError) as exc:
            await self.aclose()
            raise httpcore.ConnectError(str(exc)) from exc
        self._p.transport = transport
        return self

    def get_extra_info(self, info: str) -> typing.Any:
        t = self._p.transport
        if info == "is_readable":
            # An idle keep-alive connection that has bytes or EOF waiting was closed by the server.
            return bool(self._p.buffer) or self._p.eof
        if t is None:
            return None
        return {"ssl_object": lambda: t.get_extra_info("ssl_object"),
                "client_addr": lambda: t.get_extra_info("sockname"),
                "server_addr": lambda: t.get_extra_info("peername"),
                "socket": lambda: t.get_extra_info("socket")}.get(info, lambda: None)()


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens `AsyncioStream`s (asyncio sets TCP_NODELAY on TCP sockets itself)."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: typing.Iterable[typing.Any] | None = None) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _Protocol, host, port, local_addr=(local_address, 0) if local_address else None)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return AsyncioStream(protocol)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: typing.Iterable[typing.Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, protocol = await loop.create_unix_connection(_Protocol, path)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"timed out connecting to {path}") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return AsyncioStream(protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _LentStream:
    """A response body that gives its connection back to the pool when closed."""

    def __init__(self, stream: typing.Any, pool: "LeanPool", conn: httpcore.AsyncHTTPConnection) -> None:
        self._stream, self._pool, self._conn = stream, pool, conn
        self._closed = False

    async def __aiter__(self) -> typing.AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                await self._stream.aclose()
            finally:
                self._pool._give_back(self._conn)


def _key(origin: httpcore.Origin) -> tuple[bytes, bytes, int]:
    return origin.scheme, origin.host, origin.port


class LeanPool:
    """HTTP/1.1 connections per origin: reuse an idle one that is still open, else open one; at most
    `max_connections` in use at once (the limiter upstream normally keeps it below)."""

    def __init__(self, ssl_context: ssl.SSLContext, max_connections: int, max_keepalive: int,
                 keepalive_expiry: float | None) -> None:
        self._ssl, self._expiry, self._keep = ssl_context, keepalive_expiry, max_keepalive
        self._slots = asyncio.Semaphore(max_connections) if max_connections else None
        self._idle: dict[tuple[bytes, bytes, int], list[httpcore.AsyncHTTPConnection]] = {}
        self._backend = AsyncioBackend()

    def _take(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection:
        idle = self._idle.get(_key(origin))
        while idle:
            conn = idle.pop()
            if conn.is_available() and not conn.has_expired():
                return conn
            self._discard(conn)
        return httpcore.AsyncHTTPConnection(origin=origin, ssl_context=self._ssl, keepalive_expiry=self._expiry,
                                            http1=True, http2=False, network_backend=self._backend)

    def _discard(self, conn: httpcore.AsyncHTTPConnection) -> None:
        asyncio.get_running_loop().create_task(conn.aclose())

    def _give_back(self, conn: httpcore.AsyncHTTPConnection) -> None:
        idle = self._idle.setdefault(_key(conn._origin), [])
        if conn.is_idle() and len(idle) < self._keep:
            idle.append(conn)
        elif not conn.is_closed():
            self._discard(conn)
        if self._slots is not None:
            self._slots.release()

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        """Send `request` on a pooled connection; the body stream returns the connection when closed."""
        if self._slots is not None:
            await self._slots.acquire()
        try:
            for attempt in range(3):
                conn = self._take(request.url.origin)
                try:
                    response = await conn.handle_async_request(request)
                    break
                except httpcore.ConnectionNotAvailable:
                    # Closed under us before anything was sent (httpcore's pool retries these too).
                    self._discard(conn)
                    if attempt == 2:
                        raise
                except BaseException:
                    self._discard(conn)
                    raise
        except BaseException:
            if self._slots is not None:
                self._slots.release()
            raise
        return httpcore.Response(status=response.status, headers=response.headers,
                                 content=_LentStream(response.stream, self, conn), extensions=response.extensions)

    async def aclose(self) -> None:
        """Close every idle connection."""
        for conns in self._idle.values():
            for conn in conns:
                await conn.aclose()
        self._idle.clear()

    async def __aenter__(self) -> "LeanPool":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def proxy_configured() -> bool:
    """True when the environment names an HTTP(S) proxy: then httpx's own transport is used (it reads them)."""
    return bool({k for k in urllib.request.getproxies() if k in ("http", "https", "all")})


def fast_transport(limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's AsyncHTTPTransport on a `LeanPool` of `AsyncioStream`s (same TLS defaults, same limits)."""
    transport = httpx.AsyncHTTPTransport(limits=limits)
    # httpx takes no pool of ours: its pool is swapped for one with the same settings (httpx keeps
    # building the httpcore request and mapping httpcore's errors to its own, as with the stock pool).
    transport._pool = LeanPool(httpx.create_ssl_context(), limits.max_connections or 0,
                               limits.max_keepalive_connections or (limits.max_connections or 100),
                               limits.keepalive_expiry)
    return transport
