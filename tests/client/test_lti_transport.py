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


def _self_signed(tmp_path):
    """A certificate for 127.0.0.1 (generated at run time) and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True).sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


async def test_https_is_verified_against_the_trusted_roots(tmp_path, monkeypatch):
    # Real LMSs are https: the lean transport must do TLS, verify the certificate, and refuse one it
    # cannot trust (the platform's token must never go to an unverified host).
    import ssl

    cert_file, key_file = _self_signed(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)

    async def handle(reader, writer):
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            writer.close()          # the client went away (or refused our certificate)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/x"
    async with server:
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))       # trusted: httpx reads it when the context is made
        async with httpx.AsyncClient(transport=fast_transport(LIMITS)) as client:
            rs = await asyncio.gather(*(client.get(url) for _ in range(6)))
            assert [r.status_code for r in rs] == [200] * 6 and rs[0].json() == []
        monkeypatch.delenv("SSL_CERT_FILE")
        async with httpx.AsyncClient(transport=fast_transport(LIMITS)) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(url)


async def answer_with(raw: bytes, close: bool = True):
    """A server that answers every request with the bytes `raw` (then closes when `close`); returns (server, url)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(raw)
                await writer.drain()
                if close:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/x"


@pytest.mark.parametrize("raw, body", [
    # chunked, in two chunks
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n", b"[1,2]"),
    # no length, not chunked: the body is everything until the server closes (HTTP/1.0 style)
    (b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n[1,2,3]", b"[1,2,3]"),
    # 204: no body whatever the headers
    (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
])
async def test_response_framings(raw, body):
    server, url = await answer_with(raw)
    async with server, httpx.AsyncClient(transport=fast_transport(LIMITS)) as client:
        r = await client.get(url)
        assert r.content == body


async def test_the_platforms_own_reason_phrase_reaches_the_response():
    # Moodle 5.1 puts its refusal text only in the status line (lti-platform-behavior.md §10).
    reason = "Incorrect score received{\"x\":1} – été".encode()
    server, url = await answer_with(b"HTTP/1.0 400 " + reason + b"\r\nContent-Length: 2\r\n\r\n[]")
    async with server, httpx.AsyncClient(transport=fast_transport(LIMITS)) as client:
        r = await client.get(url)
    assert r.status_code == 400 and r.extensions["reason_phrase"] == reason
    assert r.extensions["http_version"] == b"HTTP/1.0"


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n[1,",        # closed in the middle of the body
    b"",                                                       # closed without a word
    b"HTTP/1.1 2xx nonsense\r\n\r\n",                          # not HTTP
])
async def test_a_broken_answer_is_a_protocol_error_not_a_response(raw):
    server, url = await answer_with(raw)
    async with server, httpx.AsyncClient(transport=fast_transport(LIMITS)) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(url)


async def test_a_post_body_and_its_length_reach_the_server():
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int([line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")][0])
        seen.append(head.split(b"\r\n")[0] + b" " + await reader.readexactly(length))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/lineitems/1/scores?type_id=3"
    async with server, httpx.AsyncClient(transport=fast_transport(LIMITS)) as client:
        r = await client.post(url, content=b'{"scoreGiven":0}')
    assert r.status_code == 200
    assert seen == [b'POST /lineitems/1/scores?type_id=3 HTTP/1.1 {"scoreGiven":0}']


async def test_behind_a_proxy_httpx_applies_the_proxy_settings(monkeypatch):
    from lti_client.transport import ProxiedTransport, proxy_configured

    server, url, accepted = await serve(close_after_answer=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")        # nothing listens there
    assert proxy_configured()
    async with server:
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        transport = ProxiedTransport(LIMITS)
        r = await transport.handle_async_request(httpx.Request("GET", url))
        await r.aread()
        assert r.status_code == 200 and accepted           # NO_PROXY: straight to the server
        await transport.aclose()
        monkeypatch.delenv("NO_PROXY")
        transport = ProxiedTransport(LIMITS)
        with pytest.raises(httpx.ConnectError):              # else through the (dead) proxy
            await transport.handle_async_request(httpx.Request("GET", url))
        await transport.aclose()


async def test_a_freed_slot_starts_the_next_request_at_once():
    # The limiter hands a freed slot to the next waiter by writing its request there and then (begin);
    # the waiter only waits for the answer. Same answers, one connection per slot, nothing left lent out.
    from lti_client.limiter import AdaptiveLimiter

    server, url, accepted = await serve(close_after_answer=False)
    transport = fast_transport(httpx.Limits(max_connections=2, max_keepalive_connections=2))
    limiter = AdaptiveLimiter(2, clock=lambda: 0.0)
    begun: list[bool] = []

    async def get() -> int:
        request = httpx.Request("GET", url)
        started = await limiter.acquire(start=lambda: transport.begin(request))
        begun.append(started is not None)
        try:
            response = await (started.response() if started is not None else transport.handle_async_request(request))
            await response.aread()
            return response.status_code
        finally:
            limiter.release()

    async with server:
        codes = await asyncio.gather(*(get() for _ in range(10)))
        await transport.aclose()
    assert codes == [200] * 10
    assert begun.count(True) >= 7 and len(accepted) == 2       # the first two opened connections
    assert transport._lent == 0


async def test_a_waiter_cancelled_after_its_request_was_started_gives_everything_back():
    from lti_client.limiter import AdaptiveLimiter

    server, url, accepted = await serve(close_after_answer=False)
    transport = fast_transport(httpx.Limits(max_connections=1, max_keepalive_connections=1))
    limiter = AdaptiveLimiter(1, clock=lambda: 0.0)
    async with server:
        r = await transport.handle_async_request(httpx.Request("GET", url))
        await r.aread()                                   # one idle keep-alive connection now
        await limiter.acquire()
        waiter = asyncio.ensure_future(limiter.acquire(start=lambda: transport.begin(httpx.Request("GET", url))))
        await asyncio.sleep(0)                            # queued for the slot
        limiter.release()                                 # handed over: its request is written now
        assert transport._lent == 1
        waiter.cancel()                                   # ...and its owner is cancelled before waiting
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert limiter.in_flight == 0 and transport._lent == 0
        r = await transport.handle_async_request(httpx.Request("GET", url))      # a fresh connection
        await r.aread()
        assert r.status_code == 200 and len(accepted) == 2
        await transport.aclose()


async def test_no_connection_free_in_time_is_a_pool_timeout_and_gives_nothing_away():
    server, url, _ = await serve(close_after_answer=False, answer=False)      # never answers
    transport = fast_transport(httpx.Limits(max_connections=1, max_keepalive_connections=1))
    async with server:
        first = asyncio.ensure_future(transport.handle_async_request(httpx.Request("GET", url)))
        await asyncio.sleep(0.05)                                   # holds the only slot
        waiting = httpx.Request("GET", url, extensions={"timeout": {"pool": 0.1, "connect": 5, "read": 5}})
        with pytest.raises(httpx.PoolTimeout):
            await transport.handle_async_request(waiting)
        assert transport._lent == 1 and not transport._waiters
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert transport._lent == 0
        await transport.aclose()


async def test_an_exchange_settles_at_its_last_byte_before_the_waiting_task_runs():
    # The connection and the slot are free, and the request's ON_COMPLETE called, from the protocol callback
    # that read the answer's last byte (no task runs there), not when the waiting task gets to run
    # (issue 13: the next request in line goes out then).
    from lti_client.transport import ON_COMPLETE

    server, url, accepted = await serve(close_after_answer=False)
    transport = fast_transport(httpx.Limits(max_connections=1, max_keepalive_connections=1))
    seen: list[tuple[object, int, int]] = []

    def on_complete() -> None:
        seen.append((asyncio.current_task(), transport._lent, sum(len(c) for c in transport._idle.values())))

    async with server:
        for _ in range(2):
            r = await transport.handle_async_request(httpx.Request("GET", url, extensions={ON_COMPLETE: on_complete}))
            assert r.status_code == 200 and await r.aread() == b"[]"
        await transport.aclose()
    assert seen == [(None, 0, 1), (None, 0, 1)] and len(accepted) == 1


async def test_a_failed_or_abandoned_exchange_also_calls_on_complete_once():
    from lti_client.transport import ON_COMPLETE

    calls: list[str] = []
    server, url = await answer_with(b"")                     # closes without a word
    transport = fast_transport(LIMITS)
    async with server:
        with pytest.raises(httpx.RemoteProtocolError):
            await transport.handle_async_request(httpx.Request("GET", url, extensions={ON_COMPLETE: lambda: calls.append("failed")}))
    silent, silent_url, _ = await serve(close_after_answer=False, answer=False)
    async with silent:
        pending = asyncio.ensure_future(transport.handle_async_request(
            httpx.Request("GET", silent_url, extensions={ON_COMPLETE: lambda: calls.append("abandoned")})))
        await asyncio.sleep(0.05)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
    await transport.aclose()
    assert calls == ["failed", "abandoned"] and transport._lent == 0


async def test_requests_through_the_requester_free_each_slot_exactly_once(key_file):
    # Answers, server errors, silences (read timeouts) and dropped connections, 4 in flight at most:
    # the transport frees most slots at the last byte, `send` the rest; none twice (the server never sees
    # more than 4 at once), none never (nothing is left in flight).
    from lti_client.errors import LtiError
    from lti_client.http import Requester
    from lti_client.registration import PlatformRegistration
    from lti_client.types import Endpoint, RequestStats
    from lti_client.vendors import profile_for

    busy = peak = 0
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal busy, peak, served
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                served += 1
                kind = head.split(b" ")[1].rsplit(b"/", 1)[1]
                busy += 1
                peak = max(peak, busy)
                await asyncio.sleep(0.005)
                busy -= 1
                if kind == b"drop":
                    writer.close()
                    return
                if kind == b"silent":
                    await asyncio.sleep(1)
                    return
                status = b"500 Oops" if kind == b"error" else b"200 OK"
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\n[]")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    reg = PlatformRegistration(name="t", vendor="canvas", issuer="https://lms.example", client_id="c",
                               token_url=f"{base}/token", private_key_file=key_file, key_id="k",
                               allowed_hosts=["127.0.0.1"])
    transport = fast_transport(httpx.Limits(max_connections=4, max_keepalive_connections=4))

    async def no_wait(_: float) -> None:
        await asyncio.sleep(0)

    requester = Requester(reg, profile_for("canvas"), transport, stats=RequestStats(), concurrency=4,
                          timeout=0.2, max_retries=1, backoff_base=0.0, backoff_cap=0.0, clock=lambda: 0.0,
                          sleep=no_wait)
    kinds = ["ok"] * 30 + ["error"] * 6 + ["silent"] * 2 + ["drop"] * 4

    async def one(kind: str) -> str:
        try:
            await requester.send("GET", f"{base}/x/{kind}", Endpoint.results, decode=lambda r: r.content)
            return "ok"
        except LtiError as exc:
            return exc.info.kind.value

    async with server:
        outcomes = await asyncio.gather(*(one(k) for k in kinds))
        await transport.aclose()
    assert outcomes.count("ok") == 30 and len(outcomes) == len(kinds)
    assert peak <= 4 and requester.limiter.in_flight == 0 and transport._lent == 0
    assert served == 30 + 2 * (6 + 2 + 4)                  # every failure retried once (max_retries=1)
