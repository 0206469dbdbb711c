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
