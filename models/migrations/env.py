"""Alembic environment, driven programmatically by models.db.upgrade_database (no alembic.ini).

The caller passes either an open connection (`config.attributes["connection"]`) or a URL
(`config.attributes["database_url"]`).
"""
from __future__ import annotations

from alembic import context
from sqlalchemy import text

import models  # noqa: F401  (registers every table on SQLModel.metadata)
from sqlmodel import SQLModel

target_metadata = SQLModel.metadata
config = context.config

# Any number for pg_advisory_xact_lock: serialises concurrent upgrades (several workers starting at once).
_PG_MIGRATION_LOCK = 0x67726164  # "grad"


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTERs need batch copy-and-move
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from models.db import make_engine

    with make_engine(config.attributes["database_url"]).connect() as connection:
        _run(connection)
        connection.commit()


def run_migrations_offline() -> None:
    context.configure(url=config.attributes["database_url"], target_metadata=target_metadata,
                      literal_binds=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
