"""The audit's view of the database: which courses are in scope, and the tool's records for them.

Retired rows (a full import found them gone: models/tool_records.py) are history: no course, link,
identity or completion with retired_at set reaches the audit. Passbacks are never retired."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, true
from sqlmodel import select

import models as m
from models.db import chunked
from models.tool_records import email_key
from gradesync.diagnosis.inputs import (Completion, CourseInfo, CourseRecords, CourseSnapshot, LinkInfo,
                                        Passback, PlatformRecords, normalise_email)
from gradesync.settings import ConfigError, Settings


@dataclass(frozen=True)
class CourseRef:
    platform: str
    context_id: str
    lineitems_url: str | None
    memberships_url: str | None


@dataclass
class AuditScope:
    platforms: list[str]
    courses: list[CourseRef]
    activities: list[str] | None = None
    vendors: dict[str, str] = field(default_factory=dict)

    @property
    def params(self) -> dict[str, Any]:
        return {"platforms": self.platforms, "courses": [f"{c.platform}/{c.context_id}" for c in self.courses][:200],
                "course_count": len(self.courses), "activities": self.activities}

    def context_ids(self, platform: str) -> list[str]:
        return [c.context_id for c in self.courses if c.platform == platform]

    def courses_of(self, platform: str) -> list[tuple[str, str, str]]:
        return [(c.context_id, c.lineitems_url or "", c.memberships_url or "")
                for c in self.courses if c.platform == platform]


@dataclass
class ToolRecords:
    platforms: dict[str, PlatformRecords]
    courses: dict[tuple[str, str], CourseRecords]


def resolve_scope(database_url: str, settings: Settings, platforms: list[str] | None,
                  courses: list[str] | None, activities: list[str] | None) -> AuditScope:
    """Courses of the configured platforms (all, or the filtered ones). An unknown platform name is a
    ConfigError; course filters accept `CONTEXT_ID` or `PLATFORM/CONTEXT_ID`."""
    names = platforms or settings.platform_names
    for n in names:
        settings.platform(n)          # raises ConfigError naming the unknown platform
    with m.session_scope(m.make_engine(database_url)) as s:
        stmt = (select(m.Course).where(m.Course.platform.in_(names), m.Course.retired_at.is_(None))
                .order_by(m.Course.platform, m.Course.context_id))
        rows = list(s.exec(stmt))
        if activities:
            linked = set(s.exec(select(m.Link.platform, m.Link.context_id)
                                .where(m.Link.activity_id.in_(activities), m.Link.retired_at.is_(None))))
            rows = [r for r in rows if (r.platform, r.context_id) in linked]
    if courses:
        wanted = set(courses)
        rows = [r for r in rows if r.context_id in wanted or f"{r.platform}/{r.context_id}" in wanted]
        if not rows:
            raise ConfigError(f"no imported course matches {', '.join(courses)}")
    refs = [CourseRef(r.platform, r.context_id, r.lineitems_url, r.memberships_url) for r in rows]
    used = [n for n in names if any(c.platform == n for c in refs)]
    return AuditScope(used, refs, activities, {n: settings.platform(n).vendor.value for n in used})


def load_course_records(database_url: str, scope: AuditScope) -> dict[tuple[str, str], CourseRecords]:
    """Phase 1, before extraction: each course's info, links (narrowed to the scope's activities) and
    passbacks (the tool's log and gradesync's own resync sends), keyed by the scope's courses."""
    courses: dict[tuple[str, str], CourseRecords] = {}
    with m.session_scope(m.make_engine(database_url)) as s:
        for name in scope.platforms:
            ctxs = [c.context_id for c in scope.courses if c.platform == name]
            link_rows = list(s.exec(select(m.Link).where(m.Link.platform == name, m.Link.context_id.in_(ctxs),
                                                         m.Link.retired_at.is_(None))))
            if scope.activities:
                link_rows = [link for link in link_rows if link.activity_id in scope.activities]
            by_course_links: dict[str, list[LinkInfo]] = {}
            for link in link_rows:
                by_course_links.setdefault(link.context_id, []).append(
                    LinkInfo(link.resource_link_id, link.activity_id, link.graded, link.title))
            by_course_pb: dict[str, list[Passback]] = {}
            # The log as written: retried rows all count; status_code None = no answer, resource_link_id
            # None = a tool-created line item (line_item_id says which).
            pb_rows = s.exec(select(m.Passback).where(m.Passback.platform == name, m.Passback.context_id.in_(ctxs))
                             .order_by(m.Passback.id))
            for p in pb_rows:
                by_course_pb.setdefault(p.context_id, []).append(
                    Passback(p.lms_user_id, p.resource_link_id, p.score_given, p.score_maximum, p.timestamp,
                             p.status_code, p.response or "", p.account_id, p.line_item_id))
            for ctx, p in resync_passbacks(s, name, ctxs):
                by_course_pb.setdefault(ctx, []).append(p)
            for c in s.exec(select(m.Course).where(m.Course.platform == name, m.Course.context_id.in_(ctxs),
                                                   m.Course.retired_at.is_(None))):
                info = CourseInfo(name, c.context_id, c.title, c.starts_at, c.ends_at)
                courses[(name, c.context_id)] = CourseRecords(info, sorted(by_course_links.get(c.context_id, []),
                                                                           key=lambda x: x.resource_link_id),
                                                              by_course_pb.get(c.context_id, []))
    return courses


def activities_with_work(database_url: str, courses: dict[tuple[str, str], CourseRecords]) -> set[str]:
    """The activities linked in `courses` that have at least one current completion (in any launch
    context): whose results a batch reads (gradesync/diagnosis/wanted.py). One indexed query per 5,000."""
    wanted = sorted({link.activity_id for c in courses.values() for link in c.links if link.graded})
    found: set[str] = set()
    with m.session_scope(m.make_engine(database_url)) as s:
        for i in range(0, len(wanted), 5_000):
            found |= set(s.exec(select(m.Completion.activity_id).distinct().where(
                m.Completion.activity_id.in_(wanted[i:i + 5_000]), m.Completion.retired_at.is_(None))))
    return found


def load_tool_records(database_url: str, scope: AuditScope,
                      snapshots: dict[tuple[str, str], CourseSnapshot] | None = None,
                      courses: dict[tuple[str, str], CourseRecords] | None = None) -> ToolRecords:
    """The tool's records for every course in scope, indexed per platform. With `snapshots` (phase 2,
    after extraction) accounts, identities and completions are read only by the keys the snapshots and
    passbacks name (_read_platform_rows); without, every account and identity of the platforms (the
    single-process audit). `courses`: phase 1's result, when the caller already has it."""
    if courses is None:
        courses = load_course_records(database_url, scope)
    platforms: dict[str, PlatformRecords] = {}
    with m.session_scope(m.make_engine(database_url)) as s:
        accounts = None
        for name in scope.platforms:
            mine = {key[1]: c for key, c in courses.items() if key[0] == name}
            activity_ids = sorted({link.activity_id for c in mine.values() for link in c.links})
            if snapshots is not None:
                keys = _batch_keys(mine, {ctx: snapshots.get((name, ctx)) for ctx in mine})
                rows = _read_platform_rows(s, name, activity_ids, keys)
            else:
                if accounts is None:    # emails: shared by platforms
                    accounts = list(s.exec(select(m.Account.account_id, m.Account.email)
                                           .order_by(m.Account.account_id)))
                rows = _PlatformRows(accounts, *_whole_platform_rows(s, name, activity_ids))
            platforms[name] = PlatformRecords.build(name, scope.vendors[name], rows.accounts, rows.identities,
                                                    rows.completions)
    return ToolRecords(platforms, courses)


# Outcomes of a resync attempt whose POST the platform accepted (gradesync/resync/sender.py).
_ACCEPTED_OUTCOMES = ("verified", "sent", "failed:accepted_not_shown", "failed:unconfirmable")


def resync_passbacks(s, platform: str, ctxs: list[str]) -> list[tuple[str, Passback]]:
    """gradesync's own resync sends are passbacks too: a refusal (unpublished item, stale timestamp)
    must keep its meaning in the next audit, and an accepted send is the tool's last sent score.
    Attempts without a recorded outcome (a crash mid-send) prove nothing and are left out."""
    rows = s.exec(select(m.ResyncAttempt, m.ResyncTask).join(m.ResyncTask, m.ResyncAttempt.task_id == m.ResyncTask.id)
                  .where(m.ResyncTask.platform == platform, m.ResyncTask.context_id.in_(ctxs),
                         m.ResyncAttempt.outcome.is_not(None)))
    out = []
    for attempt, task in rows:
        status = attempt.status_code
        if status is None and attempt.outcome.startswith(_ACCEPTED_OUTCOMES):
            status = 200
        if status is None or task.resource_link_id is None:
            continue
        out.append((task.context_id, Passback(task.lms_user_id, task.resource_link_id, task.score_given,
                                              task.score_maximum, attempt.timestamp_sent, status,
                                              attempt.response or "", task.account_id, task.line_item_id,
                                              resync_outcome=attempt.outcome)))
    return out


# ---- phase 2: the per-platform lookups (accounts, identities, completions) ------------------------

_CHUNK = 1000     # keys per IN list (SQLite's variable limit, PostgreSQL's plan size)


@dataclass
class _PlatformRows:
    """What PlatformRecords.build reads, in a stable order (accounts by id, identities and completions
    by row id) so the keyed and the whole-table reads build the same records for a batch's courses."""
    accounts: list[tuple[str, str | None]]
    identities: list[tuple[str, str]]
    completions: list[Completion]


@dataclass(frozen=True)
class _BatchKeys:
    contexts: list[str]
    lms_users: set[str]        # roster members, result users, passback users
    emails: set[str]           # roster emails, normalised as the diagnosis compares them


def _batch_keys(courses: dict[str, CourseRecords], snapshots: dict[str, CourseSnapshot | None]) -> _BatchKeys:
    users: set[str] = set()
    emails: set[str] = set()
    for ctx, course in courses.items():
        users |= {p.lms_user_id for p in course.passbacks if p.lms_user_id}
        snap = snapshots.get(ctx)
        if snap is None:
            continue
        for mb in snap.members:
            users.add(mb.user_id)
            if (e := normalise_email(mb.email)) is not None:
                emails.add(e)
        users |= {r.user_id for results in snap.results.values() for r in results if r.user_id}
    return _BatchKeys(sorted(courses), users, emails)


def _completion(c: m.Completion) -> Completion:
    return Completion(c.account_id, c.activity_id, c.score_given, c.score_maximum, c.completed_at,
                      c.platform, c.context_id, c.resource_link_id)


def _whole_platform_rows(s, name: str, activity_ids: list[str]) -> tuple[list, list]:
    """Every identity of the platform and every completion of its activities (the path without snapshots)."""
    # Every launch context of an account's activity (a retake term, a cross-listed section):
    # the diagnosis picks the one launched from the course, else the latest (design.md).
    comps = [_completion(c) for c in s.exec(select(m.Completion).where(m.Completion.activity_id.in_(activity_ids),
                                                                       m.Completion.retired_at.is_(None))
                                            .order_by(m.Completion.id))]
    identities = list(s.exec(select(m.Identity.account_id, m.Identity.lms_user_id)
                             .where(m.Identity.platform == name, m.Identity.retired_at.is_(None))
                             .order_by(m.Identity.id)))
    return identities, comps


def _read_platform_rows(s, name: str, activity_ids: list[str], keys: _BatchKeys) -> _PlatformRows:
    """The rows a batch's diagnosis can consult (gradesync/diagnosis/expected.py, course.py), read by key,
    each row once:
    - completions launched in the batch's courses (expected grades (b)) → their accounts;
    - identities of the LMS users the batch names → the linked accounts;
    - accounts with a roster email, then the linked / launching accounts not found so, then every
      account sharing their emails (duplicate_account; a never-launched learner found by roster email);
    - every identity of these accounts on the platform ("not linked to another LMS user", the LMS user of
      an expected (b) grade) and every completion of theirs of the batch's activities (the one launched
      from the course, else the latest)."""
    if not activity_ids:
        return _PlatformRows([], [], [])
    launched = _chunked_rows(s, keys.contexts, lambda ctxs: select(m.Completion).where(
        m.Completion.platform == name, m.Completion.context_id.in_(ctxs),
        m.Completion.activity_id.in_(activity_ids), m.Completion.retired_at.is_(None)))
    by_user = _chunked_rows(s, sorted(keys.lms_users), lambda users: select(m.Identity).where(
        m.Identity.platform == name, m.Identity.lms_user_id.in_(users), m.Identity.retired_at.is_(None)))

    accounts = dict(_accounts_by_email(s, keys.emails, {}))
    named = ({c.account_id for c in launched} | {i.account_id for i in by_user}) - accounts.keys()
    accounts.update(_chunked_rows(s, sorted(named), lambda ids: select(m.Account.account_id, m.Account.email)
                                  .where(m.Account.account_id.in_(ids))))
    known: dict[str, list[str]] = defaultdict(list)
    for account_id, email in accounts.items():
        if (e := normalise_email(email)) is not None:
            known[e].append(account_id)
    accounts.update(_accounts_by_email(s, set(known) - keys.emails, known))

    ids = sorted(accounts)
    read_identities = _ids_by_account(by_user)
    more_identities = _chunked_rows(s, ids, lambda chunk: select(m.Identity).where(
        m.Identity.platform == name, m.Identity.account_id.in_(chunk), m.Identity.retired_at.is_(None),
        _not_in(m.Identity.id, [i for a in chunk for i in read_identities.get(a, ())])))
    read_completions = _ids_by_account(launched)
    more_completions = _chunked_rows(s, ids, lambda chunk: select(m.Completion).where(
        m.Completion.account_id.in_(chunk), m.Completion.activity_id.in_(activity_ids),
        m.Completion.retired_at.is_(None),
        _not_in(m.Completion.id, [i for a in chunk for i in read_completions.get(a, ())])))
    identities = {i.id: (i.account_id, i.lms_user_id) for i in [*by_user, *more_identities]}
    comps = {c.id: c for c in [*launched, *more_completions]}
    return _PlatformRows(sorted(accounts.items()), [identities[k] for k in sorted(identities)],
                         [_completion(comps[k]) for k in sorted(comps)])


def _accounts_by_email(s, emails: set[str], known: dict[str, list[str]]) -> list[tuple[str, str | None]]:
    """Accounts whose email equals one of `emails` as normalise_email compares them (case-insensitive,
    blanks trimmed), except the `known` ones (email → account ids already read). SQL lower() folds
    ASCII only on SQLite (and under PostgreSQL's C collation): there a key with other characters is
    also matched by a LIKE pattern with `_` in their place; every candidate is checked in Python."""
    norm = email_key(m.Account.email)       # the expression of ix_account_email_norm

    def query(where, chunk, skip):
        return select(m.Account.account_id, m.Account.email).where(
            where, _not_in(m.Account.account_id, [a for e in chunk for a in skip.get(e, ())]))

    rows = _chunked_rows(s, sorted(emails), lambda chunk: query(norm.in_(chunk), chunk, known))
    found = defaultdict(list, {e: list(ids) for e, ids in known.items()})
    for account_id, email in rows:
        found[normalise_email(email)].append(account_id)
    others = sorted(e for e in emails if not e.isascii())
    if others and s.exec(select(func.lower("Ä"))).one() != "ä":
        # This database's lower() leaves non-ASCII letters alone: one scan per 100 such keys.
        for chunk in chunked(others, 100):
            rows += list(s.exec(query(or_(*[norm.like(_like_pattern(e), escape="\\") for e in chunk]), chunk, found)))
    return [(a, email) for a, email in rows if normalise_email(email) in emails]


def _like_pattern(email: str) -> str:
    """A LIKE pattern matching `email` with any character in place of each non-ASCII one."""
    escaped = email.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "".join(ch if ch.isascii() else "_" for ch in escaped)


def _ids_by_account(rows) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        out[r.account_id].append(r.id)
    return out


def _not_in(column, values: list):
    """`column NOT IN values`, or no condition for no values (rows already read are not read twice)."""
    return column.not_in(values) if values else true()


def _chunked_rows(s, keys: list, statement) -> list:
    """All rows of statement(chunk) over `keys` in chunks of _CHUNK."""
    return [row for chunk in chunked(keys, _CHUNK) for row in s.exec(statement(chunk))]
