"""Fixtures for the LTI client tests: an RSA key in tmp_path, registrations, clients on a fake LMS."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lti_fakes import HOST, TOKEN_PATHS, FakeLms, FakeTime

from lti_client import LtiClient, PlatformRegistration


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="session")
def _rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def key_file(tmp_path, _rsa_key):
    path = tmp_path / "tool.key"
    path.write_bytes(_rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return path


@pytest.fixture
def public_pem(_rsa_key):
    return _rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture
def make_reg(key_file):
    def make(vendor: str = "canvas", **overrides) -> PlatformRegistration:
        fields = dict(name=f"{vendor}-test", vendor=vendor, issuer=f"https://{HOST}",
                      client_id="client-123", token_url=f"https://{HOST}{TOKEN_PATHS[vendor]}",
                      private_key_file=key_file, key_id="kid-1", allowed_hosts=[HOST])
        fields.update(overrides)
        return PlatformRegistration(**fields)
    return make


@pytest.fixture
def fake_time():
    return FakeTime()


@pytest.fixture
def make_client(fake_time):
    clients: list[LtiClient] = []

    def make(reg: PlatformRegistration, lms: FakeLms, **kw) -> LtiClient:
        kw.setdefault("backoff_base", 0.01)
        kw.setdefault("backoff_cap", 0.05)
        client = LtiClient(reg, transport=lms.transport, clock=fake_time.clock, sleep=fake_time.sleep, **kw)
        clients.append(client)
        return client
    return make
