"""Column types shared by every table: aware-UTC datetimes and JSON that becomes JSONB on PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.mutable import MutableDict, MutableList
from sqlalchemy.types import TypeDecorator

# JSON on SQLite, JSONB on PostgreSQL. MutableDict so in-place edits are persisted (stack-notes C.1).
JsonDict = MutableDict.as_mutable(JSON().with_variant(JSONB(), "postgresql"))
JsonList = MutableList.as_mutable(JSON().with_variant(JSONB(), "postgresql"))


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (the only kind of datetime our tables hold)."""
    return datetime.now(timezone.utc)


class UtcDateTime(TypeDecorator):
    """`DateTime(timezone=True)` that always stores UTC and always returns aware UTC datetimes.

    Why: SQLite has no time zone type — SQLAlchemy writes the wall clock and drops the offset, and reads
    back naive datetimes. Converting to UTC on the way in and tagging UTC on the way out makes both
    dialects behave like PostgreSQL's `timestamptz`. Naive datetimes are refused: they are ambiguous.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: give a time zone (timestamps are stored in UTC)")
        return value.astimezone(timezone.utc)

    def bind_processor(self, dialect):
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # SQLite: write SQLAlchemy's own DATETIME storage format ("YYYY-MM-DD HH:MM:SS.ffffff", UTC) in one
        # C call — the generic path formats through a dict per value and dominated bulk imports.
        def process(value: Any) -> str | None:
            value = self.process_bind_param(value, dialect)
            return None if value is None else value.replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def process_result_value(self, value: Any, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
