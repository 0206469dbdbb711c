"""Who and what a finding is about, in names: learners (accounts.csv, or the roster's NRPS name/email),
course titles (courses.csv), activity titles (links.csv, else the LMS line item's label), and since when the
LMS shows its result (the run's snapshot). Loaded from the database once per report."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

from sqlmodel import select

from gradesync.findings import Finding, RunSummary

CHUNK = 500      # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits


@dataclass(frozen=True)
class Person:
    name: str | None
    email: str | None

    def label(self) -> str:
        return " ".join(x for x in (self.name, f"<{self.email}>" if self.email else None) if x)


@dataclass
class Directory:
    """Lookups by the keys findings carry; every lookup may miss (then the report shows the id)."""
    accounts: dict[str, Person] = field(default_factory=dict)                       # account_id
    members: dict[tuple[str, str, str], Person] = field(default_factory=dict)       # platform, ctx, user
    account_of: dict[tuple[str, str], str] = field(default_factory=dict)            # platform, user → account
    courses: dict[tuple[str, str], str] = field(default_factory=dict)               # platform, ctx → title
    links: dict[tuple[str, str, str], str] = field(default_factory=dict)            # platform, ctx, rl → title
    line_items: dict[tuple[str, str, str], str] = field(default_factory=dict)       # platform, ctx, li → label
    result_times: dict[tuple[str, str, str, str], datetime] = field(default_factory=dict)  # … li, user
    vendors: dict[str, str] = field(default_factory=dict)                           # platform → vendor

    def account_labels(self) -> dict[str, str]:
        """account id → "Name <email>" (computed once: evidence words name the other account)."""
        if getattr(self, "_labels", None) is None or len(self._labels) != len(self.accounts):
            self._labels = {k: p.label() for k, p in self.accounts.items()}
        return self._labels

    def learner(self, f: Finding) -> Person | None:
        """accounts.csv's name/email of the finding's account (or the account linked to its LMS user),
        else the roster's NRPS name/email; None when neither is known."""
        account = f.account_id or (self.account_of.get((f.platform, f.lms_user_id)) if f.lms_user_id else None)
        a = self.accounts.get(account) if account else None
        mb = self.members.get((f.platform, f.context_id, f.lms_user_id)) if f.lms_user_id else None
        name = (a.name if a else None) or (mb.name if mb else None)
        email = (a.email if a else None) or (mb.email if mb else None)
        return Person(name, email) if name or email else None

    def course_title(self, platform: str, context_id: str) -> str | None:
        return self.courses.get((platform, context_id))

    def activity_title(self, f: Finding) -> str | None:
        if f.resource_link_id and (t := self.links.get((f.platform, f.context_id, f.resource_link_id))):
            return t
        if f.line_item_id:
            return self.line_items.get((f.platform, f.context_id, f.line_item_id))
        return None

    def lms_since(self, f: Finding) -> datetime | None:
        if not (f.line_item_id and f.lms_user_id):
            return None
        return self.result_times.get((f.platform, f.context_id, f.line_item_id, f.lms_user_id))


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    items = sorted({v for v in values if v})
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]


def directory_from_summary(summary: RunSummary) -> Directory:
    """What the summary alone knows (course titles): the fallback when no database is at hand."""
    return Directory(courses={(c.platform, c.context_id): c.title for c in summary.courses if c.title})


def load_directory(database_url: str, summary: RunSummary) -> Directory:
    """Names, titles and result times for the findings of `summary` (and its resolved ones)."""
    import models as m

    d = directory_from_summary(summary)
    findings = [*summary.findings, *summary.resolved]
    users = {f.lms_user_id for f in findings if f.lms_user_id}
    platforms = {f.platform for f in findings}
    with m.session_scope(m.make_engine(database_url)) as s:
        for chunk in _chunks(users):
            for platform, user, account in s.exec(select(m.Identity.platform, m.Identity.lms_user_id, m.Identity.account_id)
                                                  .where(m.Identity.lms_user_id.in_(chunk))):
                if platform in platforms:
                    d.account_of[(platform, user)] = account
            for r in s.exec(select(m.LmsMember).where(m.LmsMember.run_id == summary.run_id,
                                                      m.LmsMember.user_id.in_(chunk))):
                d.members[(r.platform, r.context_id, r.user_id)] = Person(r.name, r.email)
            for r in s.exec(select(m.LmsResult.platform, m.LmsResult.context_id, m.LmsResult.line_item_id,
                                   m.LmsResult.user_id, m.LmsResult.timestamp)
                            .where(m.LmsResult.run_id == summary.run_id, m.LmsResult.user_id.in_(chunk))):
                if r[4] is not None:
                    d.result_times[(r[0], r[1], r[2], r[3])] = r[4]
        accounts = {f.account_id for f in findings if f.account_id} | set(d.account_of.values())
        accounts |= {str(v) for f in findings for k, v in (f.evidence or {}).items()
                     if k in ("completed_in_account", "linked_account") and v}
        for chunk in _chunks(accounts):
            for a in s.exec(select(m.Account).where(m.Account.account_id.in_(chunk))):
                d.accounts[a.account_id] = Person(a.name, a.email)
        d.vendors = {p.name: p.vendor for p in s.exec(select(m.Platform)) if p.name in platforms}
        contexts = {f.context_id for f in findings}
        for chunk in _chunks(contexts):
            for c in s.exec(select(m.Course).where(m.Course.context_id.in_(chunk))):
                if c.title:
                    d.courses[(c.platform, c.context_id)] = c.title
            for link in s.exec(select(m.Link).where(m.Link.context_id.in_(chunk))):
                if link.title:
                    d.links[(link.platform, link.context_id, link.resource_link_id)] = link.title
            for li in s.exec(select(m.LmsLineItem).where(m.LmsLineItem.run_id == summary.run_id,
                                                         m.LmsLineItem.context_id.in_(chunk))):
                if li.label:
                    d.line_items[(li.platform, li.context_id, li.line_item_id)] = li.label
    return d
