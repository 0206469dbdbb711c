"""The audit's view of the database: which courses are in scope, and the tool's records for them.

Retired rows (a full import found them gone: models/tool_records.py) are history: no course, link,
identity or completion with retired_at set reaches the audit. Passbacks are never retired."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import select

import models as m
from gradesync.diagnosis.inputs import (Completion, CourseInfo, CourseRecords, LinkInfo, Passback,
                                        PlatformRecords)
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


def load_tool_records(database_url: str, scope: AuditScope) -> ToolRecords:
    """The tool's records for every course in scope, indexed per platform."""
    platforms: dict[str, PlatformRecords] = {}
    courses: dict[tuple[str, str], CourseRecords] = {}
    with m.session_scope(m.make_engine(database_url)) as s:
        accounts = list(s.exec(select(m.Account.account_id, m.Account.email)))   # emails: shared by platforms
        for name in scope.platforms:
            ctxs = [c.context_id for c in scope.courses if c.platform == name]
            link_rows = list(s.exec(select(m.Link).where(m.Link.platform == name, m.Link.context_id.in_(ctxs),
                                                         m.Link.retired_at.is_(None))))
            if scope.activities:
                link_rows = [link for link in link_rows if link.activity_id in scope.activities]
            activity_ids = sorted({link.activity_id for link in link_rows})
            # Every launch context of an account's activity (a retake term, a cross-listed section):
            # the diagnosis picks the one launched from the course, else the latest (design.md).
            comps = [Completion(c.account_id, c.activity_id, c.score_given, c.score_maximum, c.completed_at,
                                c.platform, c.context_id, c.resource_link_id)
                     for c in s.exec(select(m.Completion).where(m.Completion.activity_id.in_(activity_ids),
                                                                m.Completion.retired_at.is_(None))
                                     .order_by(m.Completion.id))]
            identities = list(s.exec(select(m.Identity.account_id, m.Identity.lms_user_id)
                                     .where(m.Identity.platform == name, m.Identity.retired_at.is_(None))))
            platforms[name] = PlatformRecords.build(name, scope.vendors[name], accounts, identities, comps)

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
