"""Before an audit starts: is anything in scope, and can every course's service URLs be called?

An audit with no course in scope must never look like an all-clear ("0 findings", a digest): it stops
here with the reason — nothing imported, a database that is not the one imported into, or a filter that
matches nothing. A course whose line-items or memberships URL is outside its platform's allowed_hosts
would be refused by the client (no token is ever sent there): named here before the run starts.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlmodel import func, select

import models as m
from gradesync.audit.records import AuditScope, resolve_scope
from gradesync.settings import ConfigError, Settings, url_problem


class EmptyScope(ConfigError):
    """No course in scope: the audit would prove nothing."""


def imported_courses(database_url: str) -> Counter:
    """Imported courses per platform name."""
    with m.session_scope(m.make_engine(database_url)) as s:
        return Counter(dict(s.exec(select(m.Course.platform, func.count()).group_by(m.Course.platform)).all()))


def why_empty(database_url: str, settings: Settings, platforms: list[str] | None, courses: list[str] | None,
              activities: list[str] | None, *, database_was_missing: bool = False) -> str:
    """The reason an audit has no course in scope, worded for the person who ran it."""
    from sqlalchemy.engine import make_url

    per_platform = imported_courses(database_url)
    where = make_url(database_url).render_as_string(hide_password=True)
    if not sum(per_platform.values()):
        hint = (" — the database file did not exist before this command: is [database] url the database you "
                "imported into? (relative paths are relative to gradesync.toml's folder)"
                if database_was_missing else ": run `gradesync import DIR` first")
        return f"no course has been imported into {where}{hint}"
    configured = [p for p in (platforms or settings.platform_names)]
    imported = ", ".join(f"{p} {n}" for p, n in sorted(per_platform.items()))
    if not any(per_platform.get(p) for p in configured):
        return (f"no imported course belongs to {'platform ' + ', '.join(configured) if platforms else 'a configured platform'}"
                f" (imported courses per platform: {imported})")
    if activities:
        return f"no imported course of {', '.join(configured)} links activity {', '.join(activities)}"
    if courses:
        return f"no imported course matches {', '.join(courses)}"
    return f"no course in scope (imported courses per platform: {imported})"


def require_courses(database_url: str, settings: Settings, platforms: list[str] | None,
                    courses: list[str] | None, activities: list[str] | None, *,
                    database_was_missing: bool = False) -> AuditScope:
    """The audit's scope, or EmptyScope (a ConfigError) saying why nothing is in it. Unknown platform
    names and course filters that match nothing are ConfigErrors too (resolve_scope)."""
    try:
        scope = resolve_scope(database_url, settings, platforms, courses, activities)
    except ConfigError as e:
        if "no imported course matches" in str(e):
            raise EmptyScope(why_empty(database_url, settings, platforms, courses, activities,
                                       database_was_missing=database_was_missing)) from None
        raise
    if not scope.courses:
        raise EmptyScope(why_empty(database_url, settings, platforms, courses, activities,
                                   database_was_missing=database_was_missing))
    return scope


def _course_url_problems(settings: Settings, platform: str, context_id: str, lineitems_url: str | None,
                         memberships_url: str | None) -> list[str]:
    reg = settings.platform(platform)
    out = []
    for label, url in (("lineitems_url", lineitems_url), ("memberships_url", memberships_url)):
        problem = url_problem(url, reg.allowed_hosts) if url else None
        if problem:
            out.append(f"{platform}/{context_id} {label}: {problem.replace('a token request', 'a request')}")
    return out


def service_url_problems(scope: AuditScope, settings: Settings) -> list[str]:
    """Each course in scope whose line-items or memberships URL the client would refuse."""
    return [p for c in scope.courses
            for p in _course_url_problems(settings, c.platform, c.context_id, c.lineitems_url, c.memberships_url)]


def imported_url_problems(settings: Settings) -> list[str]:
    """The same check over every imported course of the configured platforms (`gradesync platforms`).
    Reads the database only if it already exists (never creates one) and says nothing if it cannot."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    u = make_url(settings.database.url)
    if u.get_backend_name() == "sqlite" and (not u.database or not Path(u.database).exists()):
        return []
    try:
        with m.session_scope(m.make_engine(settings.database.url)) as s:
            rows = s.exec(select(m.Course.platform, m.Course.context_id, m.Course.lineitems_url,
                                 m.Course.memberships_url).where(m.Course.platform.in_(settings.platform_names))).all()
    except DBAPIError:          # no tables yet, or unreachable: `platforms` then checks the file only
        return []
    return [p for row in rows for p in _course_url_problems(settings, *row)]
