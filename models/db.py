"""Engine, session and migration helpers, and the dialect-aware bulk upsert and insert.

One engine per database URL per process (cached). SQLite gets foreign keys and WAL on every connection;
PostgreSQL gets pre-ping so a restarted server does not hand us dead pooled connections.
"""
from __future__ import annotations

import threading
from operator import itemgetter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Engine, create_engine, event, func, literal_column, or_, select
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_engines: dict[str, Engine] = {}
_upgraded: set[str] = set()
_lock = threading.Lock()


def _sqlite_on_connect(dbapi_connection, _record) -> None:
    # SQLite ignores foreign keys unless asked on each connection (stack-notes C.1); WAL lets readers
    # (the report, the UI) work while an import or audit writes.
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    # 64 MB page cache instead of the 2 MB default: a 1M-row import's unique indexes stop thrashing.
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()


def make_engine(url: str) -> Engine:
    """The process-wide engine for `url` (created on first use)."""
    with _lock:
        engine = _engines.get(url)
        if engine is not None:
            return engine
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(engine, "connect", _sqlite_on_connect)
        else:
            engine = create_engine(url, pool_pre_ping=True)
        _engines[url] = engine
        return engine


def dispose_engine(url: str) -> None:
    """Close and forget the cached engine for `url` (tests, and before dropping a database)."""
    with _lock:
        engine = _engines.pop(url, None)
        _upgraded.discard(url)
    if engine is not None:
        engine.dispose()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any exception."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str):
    """A programmatic Alembic config (no alembic.ini): script location inside this package."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not set_main_option: ConfigParser would choke on '%' in a password.
    cfg.attributes["database_url"] = url
    return cfg


def upgrade_database(url: str, *, force: bool = False) -> None:
    """Bring the database at `url` to the newest migration (once per process unless force=True)."""
    if url in _upgraded and not force:
        return
    from alembic import command

    from sqlalchemy.exc import OperationalError

    engine = make_engine(url)
    for attempt in (1, 2):
        cfg = alembic_config(url)
        try:
            with engine.begin() as connection:
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, "head")
            break
        except OperationalError as e:
            # SQLite has no advisory lock (PostgreSQL takes one in env.py): when two processes start on a
            # fresh file at once, the loser sees "table … already exists"; by then the winner is done.
            if attempt == 2 or engine.dialect.name != "sqlite" or "already exists" not in str(e):
                raise
    _upgraded.add(url)


def current_revision(url: str) -> str | None:
    """The revision the database is at (None for an empty database)."""
    from alembic.migration import MigrationContext

    with make_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


class UpsertCounts(NamedTuple):
    """What one bulk_upsert did: rows inserted, rows updated, rows left as they were."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


def bulk_upsert(session: Session, model: type[SQLModel], rows: Sequence[dict[str, Any]],
                key_columns: Sequence[str], update_columns: Sequence[str],
                touch_columns: Sequence[str] = ()) -> UpsertCounts:
    """INSERT … ON CONFLICT (key_columns) DO UPDATE SET update_columns WHERE any of them changed.
    touch_columns (a "changed at" mark) are written on insert and on a real update, never compared.
    SQLite: one executemany (stack-notes C.2); PostgreSQL: COPY to a temp table + one INSERT … SELECT.
    All rows must have the same keys and must not repeat a conflict key. Returns the counts."""
    if not rows:
        return UpsertCounts()
    table = model.__table__
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return _pg_upsert_via_copy(connection, table, rows, key_columns, update_columns, touch_columns)
    if dialect != "sqlite":  # pragma: no cover - only the two supported databases
        raise ValueError(f"bulk_upsert: unsupported dialect {dialect!r}")
    from sqlalchemy.dialects.sqlite import insert

    stmt = _on_conflict(insert(table), table, key_columns, update_columns, touch_columns)
    # SQLite: pysqlite sums the per-row change counts of an executemany (a conflict skipped by the WHERE
    # counts 0), and the row count before/after tells inserts from updates.
    before = connection.execute(select(func.count()).select_from(table)).scalar_one()
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        sql, params = _driver_statement(connection.dialect, stmt, table, rows)
        cursor.executemany(sql, params)
        changed = cursor.rowcount
    finally:
        cursor.close()
    after = connection.execute(select(func.count()).select_from(table)).scalar_one()
    inserted = after - before
    return UpsertCounts(inserted=inserted, updated=changed - inserted, unchanged=len(rows) - changed)


def _driver_statement(dialect, stmt, table, rows: Sequence[dict[str, Any]]) -> tuple[str, list]:
    """The statement compiled once, and the rows as driver parameters with each column's bind
    processing (JSON, UtcDateTime, SQLite's datetime strings) applied.

    Why not `connection.execute(stmt, rows)`: SQLAlchemy's per-row parameter handling measured about
    half of a 1M-row import here; doing the same bind processing in one comprehension is 3x cheaper.
    """
    keys = list(rows[0])
    compiled = stmt.compile(dialect=dialect, column_keys=keys)
    order = list(compiled.positiontup) if compiled.positional else keys
    # Column-wise: itemgetter/map/zip run in C; only the bind processors are Python calls.
    columns = []
    for k in order:
        values = list(map(itemgetter(k), rows))
        processor = table.c[k].type._cached_bind_processor(dialect)
        columns.append(list(map(processor, values)) if processor is not None else values)
    if compiled.positional:
        params: list = list(zip(*columns))
    else:
        params = [dict(zip(order, values)) for values in zip(*columns)]
    return str(compiled), params


def _on_conflict(stmt, table, key_columns: Sequence[str], update_columns: Sequence[str],
                 touch_columns: Sequence[str] = ()):
    """ON CONFLICT (keys) DO UPDATE … WHERE any update column changed (a no-op update is skipped, so a
    re-import writes nothing), or DO NOTHING when there is nothing to update."""
    if not update_columns:
        return stmt.on_conflict_do_nothing(index_elements=[table.c[k] for k in key_columns])
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[table.c[k] for k in key_columns],
        set_={c: excluded[c] for c in (*update_columns, *touch_columns)},
        where=or_(*[table.c[c].is_distinct_from(excluded[c]) for c in update_columns]),
    )


def _pg_upsert_via_copy(connection, table, rows: Sequence[dict[str, Any]], key_columns: Sequence[str],
                        update_columns: Sequence[str], touch_columns: Sequence[str] = ()) -> UpsertCounts:
    """PostgreSQL: COPY the rows into a temporary table, then one INSERT … SELECT … ON CONFLICT.

    Why: a pipelined executemany of 1M upserts took 114 s wall here (25 s of it client CPU adapting
    parameters row by row); COPY plus one set-based statement does far less per row. The counts come
    from the statement itself: each written row tells whether it was inserted (a fresh tuple has
    xmax = 0, an updated one the updating transaction's id) and a CTE counts them; rows skipped by the
    WHERE are not written and count as unchanged.
    """
    from sqlalchemy import column, table as sql_table
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    keys = list(rows[0])
    quote = connection.dialect.identifier_preparer.quote
    staging = f"_gs_upsert_{table.name}"
    col_list = ", ".join(quote(k) for k in keys)

    raw = connection.connection.dbapi_connection
    with raw.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {quote(staging)}")
        cur.execute(f"CREATE TEMP TABLE {quote(staging)} AS SELECT {col_list} FROM {quote(table.name)} WITH NO DATA")
    _pg_copy(connection, staging, table, rows)
    source = sql_table(staging, *[column(k) for k in keys])
    stmt = _on_conflict(pg_insert(table).from_select(keys, select(*source.c)), table, key_columns, update_columns,
                        touch_columns)
    written = stmt.returning(literal_column("(xmax = 0)").label("inserted")).cte("written")
    inserted, total = connection.execute(
        select(func.count().filter(written.c.inserted), func.count()).select_from(written)).one()
    connection.exec_driver_sql(f"DROP TABLE {quote(staging)}")
    return UpsertCounts(inserted=inserted, updated=total - inserted, unchanged=len(rows) - total)


def _pg_copy(connection, target: str, table, rows: Sequence[dict[str, Any]]) -> None:
    """COPY `rows` (dicts with the same keys) into the table named `target`, each value through its
    column's bind processing in `table` (JSON, UtcDateTime, enums), as the executemany path does."""
    keys = list(rows[0])
    quote = connection.dialect.identifier_preparer.quote
    columns = []
    for k in keys:
        values = list(map(itemgetter(k), rows))
        processor = table.c[k].type._cached_bind_processor(connection.dialect)
        columns.append(list(map(processor, values)) if processor is not None else values)
    with connection.connection.dbapi_connection.cursor() as cur:
        with cur.copy(f"COPY {quote(target)} ({', '.join(quote(k) for k in keys)}) FROM STDIN") as copy:
            for values in zip(*columns):
                copy.write_row(values)


def bulk_insert(session: Session, model: type[SQLModel], rows: Sequence[dict[str, Any]]) -> int:
    """Insert `rows` (dicts with the same keys; omitted columns get their database default) in bulk:
    COPY … FROM STDIN on PostgreSQL, one executemany of the compiled INSERT on SQLite. Returns the
    number of rows. Why not `session.execute(insert(model), rows)`: bench/bulk_insert.py measures both."""
    if not rows:
        return 0
    table = model.__table__
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "postgresql":
        _pg_copy(connection, table.name, table, rows)
        return len(rows)
    if dialect != "sqlite":  # pragma: no cover - only the two supported databases
        raise ValueError(f"bulk_insert: unsupported dialect {dialect!r}")
    from sqlalchemy import insert

    sql, params = _driver_statement(connection.dialect, insert(table), table, rows)
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.executemany(sql, params)
    finally:
        cursor.close()
    return len(rows)


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of at most `size` items."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
