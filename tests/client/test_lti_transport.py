"""lti_client.transport over real loopback sockets: keep-alive reuse, a connection the server closed while
idle is noticed and replaced, and a server that never answers is a read timeout (issue 13)."""
from __future__ import annotations

import asyncio

import httpx
import pytest

from lti_client.transport import fast_transport

pytestmark = pytest.mark.anyio

LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=4)


async def serve(close_after_answer: bool, answer: bool = True):
    """A tiny HTTP/1.1 server; returns (server, url, connections accepted)."""
    accepted: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head or not answer:
                    await asyncio.sleep(5)
                    return
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]")
                await writer.drain()
                if close_after_answer:        # keep-alive promised (no Connection: close), then closed
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/x", accepted


async def test_sequential_requests_reuse_one_connection():
    server, url, accepted = await serve(close_after_answer=False)
    async with server, httpx.AsyncClient(transport=fast_transport(LIMITS)) as client:
        for _ in range(5):
            r = await client.get(url)
            assert r.status_code == 200 and r.json() == []
    assert len(accepted) == 1


async def test_a_connection_the_server_closed_while_idle_is_replaced():
    server, url, accepted = await serve(close_after_answer=True)
    async with server, httpx.AsyncClient(transport=fast_transport(LIMITS)) as client:
        for _ in range(3):
            r = await client.get(url)
            assert r.status_code == 200
            await asyncio.sleep(0.05)          # the server's FIN arrives while the connection is idle
    assert len(accepted) == 3


async def test_a_silent_server_is_a_read_timeout():
    server, url, _ = await serve(close_after_answer=False, answer=False)
    async with server, httpx.AsyncClient(transport=fast_transport(LIMITS), timeout=0.2) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(url)
