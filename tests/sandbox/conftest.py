"""Fixtures for the sandbox server tests (helpers live in sandbox_helpers.py; keys are generated at run time)."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox_helpers import Tool, keypair, make_state
from sandbox_lms.state import LmsState
from sandbox_lms.server import start_sandbox


@pytest.fixture(scope="session")
def tool_key() -> tuple[rsa.RSAPrivateKey, str]:
    """The tool's key pair (private key object, public PEM), generated once per session."""
    return keypair()


@pytest.fixture(scope="session")
def stranger_key() -> tuple[rsa.RSAPrivateKey, str]:
    """A key pair the sandbox does not know."""
    return keypair()


@pytest.fixture
def state(tool_key) -> LmsState:
    """A fresh state with one registration per profile."""
    return make_state(tool_key[1])


@pytest.fixture
def sandbox(state):
    """The state served over real HTTP on a free loopback port."""
    with start_sandbox(state) as running:
        yield running


@pytest.fixture
def tool(sandbox, tool_key):
    """tool(profile) -> Tool talking to that profile's registration."""
    made: list[Tool] = []

    def make(profile: str) -> Tool:
        t = Tool(sandbox, sandbox.state.registrations[profile], tool_key[0])
        made.append(t)
        return t

    yield make
    for t in made:
        t.http.close()
