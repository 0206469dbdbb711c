"""Parsing one CSV value. Each parser returns the typed value or raises RowError with a reason that
names the column, so a rejected row says exactly what was wrong."""
from __future__ import annotations

import math
from datetime import datetime, timezone
from urllib.parse import urlsplit

from lti_client.registration import PlatformRegistration


class RowError(ValueError):
    """Why one row is rejected (worded for the person who fixes the export)."""


def required(row: dict[str, str], column: str) -> str:
    """The value of `column`, which must not be empty."""
    value = row[column]
    if not value:
        raise RowError(f"{column}: required value is missing")
    return value


def optional(row: dict[str, str], column: str) -> str | None:
    """The value of `column`, or None when empty."""
    return row[column] or None


def timestamp(column: str, value: str) -> datetime:
    """An ISO 8601 timestamp *with* a zone, as aware UTC. A timestamp without a zone is rejected:
    guessing the export's local time would shift every completion by hours."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise RowError(f"{column}: not an ISO 8601 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        raise RowError(f"{column}: timestamp without a time zone is ambiguous: {value!r} "
                       "(add Z or an offset such as +02:00)")
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:           # e.g. 9999-12-31T23:00:00-05:00 is past the last representable instant
        raise RowError(f"{column}: timestamp out of range: {value!r}") from None


def number(column: str, value: str) -> float:
    """A finite decimal number."""
    try:
        parsed = float(value)
    except ValueError:
        raise RowError(f"{column}: not a number: {value!r}") from None
    if not math.isfinite(parsed):
        raise RowError(f"{column}: not a finite number: {value!r}")
    return parsed


def score_pair(row: dict[str, str], given_col: str = "score_given", max_col: str = "score_maximum",
               *, allow_empty: bool = False) -> tuple[float | None, float | None]:
    """score_given ≥ 0 and score_maximum > 0 (both empty allowed only when allow_empty)."""
    given_raw, max_raw = row[given_col], row[max_col]
    if allow_empty and not given_raw and not max_raw:
        return None, None
    given = number(given_col, required(row, given_col))
    maximum = number(max_col, required(row, max_col))
    if given < 0:
        raise RowError(f"{given_col}: negative score {given_raw!r}")
    if maximum <= 0:
        raise RowError(f"{max_col}: must be greater than 0, got {max_raw!r}")
    return given, maximum


def integer(column: str, value: str, low: int, high: int) -> int:
    """An integer within [low, high]."""
    try:
        parsed = int(value)
    except ValueError:
        raise RowError(f"{column}: not an integer: {value!r}") from None
    if not low <= parsed <= high:
        raise RowError(f"{column}: {parsed} is outside {low}..{high}")
    return parsed


def choice(column: str, value: str, allowed: tuple[str, ...]) -> str:
    """One of `allowed` (case-insensitive; returned lower-cased)."""
    v = value.lower()
    if v not in allowed:
        raise RowError(f"{column}: expected {' or '.join(allowed)}, got {value!r}")
    return v


def boolean(column: str, value: str) -> bool:
    """`true` or `false` (case-insensitive)."""
    return choice(column, value, ("true", "false")) == "true"


def platform_of(column: str, value: str, platforms: dict[str, PlatformRegistration]) -> PlatformRegistration:
    """The registration named `value`, which must be configured in gradesync.toml."""
    reg = platforms.get(value)
    if reg is None:
        known = ", ".join(sorted(platforms)) or "none"
        raise RowError(f"{column}: unknown platform {value!r} (configured in gradesync.toml: {known})")
    return reg


def service_url(column: str, value: str, reg: PlatformRegistration) -> str:
    """A service URL the client may call for this platform: its host must be in allowed_hosts (we send
    a bearer token there) and it must be https (http only on loopback)."""
    if reg.host_allowed(value):
        return value
    host = (urlsplit(value).hostname or "").lower()
    if not host:
        raise RowError(f"{column}: not an absolute URL: {value!r}")
    if host not in reg.allowed_hosts:
        raise RowError(f"{column}: host {host!r} is not in allowed_hosts of platform {reg.name!r}")
    raise RowError(f"{column}: must be https (http only on loopback): {value!r}")


def column_limits(model, columns: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """(column, maximum length) of the model's length-limited text columns among `columns`. PostgreSQL
    refuses a longer value (and would abort the whole import); SQLite would store it: both reject the row."""
    return tuple((c.name, c.type.length) for c in model.__table__.columns
                 if c.name in columns and getattr(c.type, "length", None))


def check_lengths(values: dict, limits: tuple[tuple[str, int], ...]) -> None:
    """Raise RowError for the first value longer than its column."""
    for column, limit in limits:
        value = values[column]
        if value is not None and len(value) > limit:
            raise RowError(f"{column}: value is {len(value):,} characters, longer than the column's "
                           f"{limit:,}")
