"""Shared fixtures.

- `db_url`: an empty database, on SQLite (a temp file) always and on PostgreSQL when
  GRADESYNC_TEST_POSTGRES_URL is set. Each PostgreSQL test gets its own schema on the shared `test`
  database (via search_path), dropped afterwards, so tests never see each other's rows.
- `migrated_db_url`: the same, brought to the newest migration.
- `rsa_private_pem` / `rsa_key_file`: an RSA key generated at run time (never committed).
- `write_config`: writes a gradesync.toml with platforms pointing at `rsa_key_file`.
- `prefect_env`: one real Prefect server for the session (so each CLI run skips the ~12 s start of a
  temporary server — stack-notes A.5), as the environment for subprocesses.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from scripts.prefect_stack import prefect_server

PG_ENV = "GRADESYNC_TEST_POSTGRES_URL"

# No test starts (or uses) a warm process (cli/warm.py) unless it turns this back on itself, and stops
# what it started: set here, in this process's environment, so every subprocess a test runs inherits it
# (`prefect_env` copies os.environ).
os.environ["GRADESYNC_WARM"] = "off"


def _db_params() -> list:
    params = [pytest.param("sqlite", id="sqlite")]
    if os.environ.get(PG_ENV):
        params.append(pytest.param("postgresql", id="postgresql"))
    return params


@pytest.fixture(params=_db_params())
def db_url(request, tmp_path: Path):
    """URL of an empty, isolated database (parametrised: sqlite, and postgresql when configured)."""
    from models.db import dispose_engine

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gradesync-test.db'}"
        yield url
        dispose_engine(url)
        return

    import sqlalchemy as sa

    base = os.environ[PG_ENV]
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    try:
        yield url
    finally:
        dispose_engine(url)
        with admin.connect() as c:
            c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def migrated_db_url(db_url: str) -> str:
    """`db_url`, upgraded to the newest migration."""
    from models.db import upgrade_database

    upgrade_database(db_url)
    return db_url


@pytest.fixture(scope="session")
def rsa_private_pem() -> bytes:
    """A 2048-bit RSA private key (PKCS#8 PEM), generated once per test session."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture
def rsa_key_file(tmp_path: Path, rsa_private_pem: bytes) -> Path:
    """Path of a PEM file holding `rsa_private_pem`."""
    p = tmp_path / "tool-key.pem"
    p.write_bytes(rsa_private_pem)
    p.chmod(0o600)
    return p


def _platform_toml(name: str, vendor: str, key_file: Path, hosts: list[str]) -> str:
    host = hosts[0]
    return (
        "[[platforms]]\n"
        f'name = "{name}"\nvendor = "{vendor}"\nissuer = "https://{host}"\nclient_id = "client-{name}"\n'
        f'token_url = "https://{host}/login/oauth2/token"\nprivate_key_file = "{key_file}"\n'
        f'key_id = "kid-{name}"\nallowed_hosts = [{", ".join(repr(h).replace(chr(39), chr(34)) for h in hosts)}]\n\n'
    )


@pytest.fixture
def write_config(tmp_path: Path, rsa_key_file: Path):
    """write_config(db_url=None, platforms=[(name, vendor, [hosts])], extra="") -> Path of gradesync.toml.
    Default: one canvas platform "canvas-test" allowing canvas.test."""

    def write(db_url: str | None = None, platforms: list[tuple[str, str, list[str]]] | None = None,
              extra: str = "", name: str = "gradesync.toml") -> Path:
        platforms = platforms if platforms is not None else [("canvas-test", "canvas", ["canvas.test"])]
        text = ""
        if db_url:
            text += f'[database]\nurl = "{db_url}"\n\n'
        text += extra
        for pname, vendor, hosts in platforms:
            text += _platform_toml(pname, vendor, rsa_key_file, hosts)
        p = tmp_path / name
        p.write_text(text, encoding="utf-8")
        return p

    return write



@pytest.fixture(scope="session")
def prefect_env(tmp_path_factory) -> dict[str, str]:
    """Environment for subprocesses (and this process) pointing at a real, session-wide Prefect server."""
    home = tmp_path_factory.mktemp("prefect-home")
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_SERVER_LOGGING_LEVEL": "WARNING"}
    if os.environ.get("PREFECT_API_URL"):
        yield env
        return
    env.pop("PREFECT_API_URL", None)
    with prefect_server(env, home) as url:
        env["PREFECT_API_URL"] = url
        yield env


