"""Which courses the nightly reads tonight (issue 12 goal 4; the why: docs/night-reads.md).

A course is read when something may have changed that the last audit did not see: it was never
audited, its last audit was unverified, left grades unchecked or had findings (watched nightly so their
resolution is seen), or the tool has a new completion, passback or resync for it. A clean, unchanged
course is read on a rolling cadence instead: once every `rolling_days`, each on its own night, so the
load is spread. Courses not started yet are not read; an ended course gets one final audit after its
grace, then a weekly re-check until it is clean.

Set-based: five queries per chunk of CHUNK courses, whatever the number of courses (SQLite and
PostgreSQL alike). Pure decision, no writes.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import case, exists, func, or_, select, tuple_

import models as m
from gradesync.audit.records import CourseRef
from gradesync.settings import Settings

CHUNK = 5_000                      # courses per IN-list: 10,000 bound values, inside SQLite's limit
ENDED_RECHECK_DAYS = 7             # an ended course that is not clean yet: re-read weekly (issue 12)
# A nightly starts at about the same time each night, a little earlier or later: "7 days since" must
# not slip to the 8th night because tonight's run started a minute before last week's.
_SLACK = timedelta(hours=12)


@dataclass(frozen=True)
class CoursePlan:
    """Whether the nightly reads a course tonight, and why, in words a support person understands."""
    platform: str
    context_id: str
    read: bool
    reason: str


@dataclass(frozen=True)
class _LastAudit:
    """A course's latest audit (a whole-course run, not a resync) and what it concluded."""
    started_at: datetime
    status: str                    # audited | unverified
    reason: str | None             # set on an audited course when some links could not be checked
    has_findings: bool
    ever_audited: bool             # some run (this one or earlier) audited the course

    @property
    def clean(self) -> bool:
        return self.status == "audited" and not self.reason and not self.has_findings


@dataclass(frozen=True)
class _Facts:
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    last: _LastAudit | None = None
    # kind → latest change mark of that kind; None as a value = a row without a mark (counts as "now")
    changes: tuple[tuple[str, datetime | None], ...] = ()


def plan_night(database_url: str, settings: Settings, courses: list[CourseRef], now: datetime, *,
               full: bool = False) -> list[CoursePlan]:
    """One CoursePlan per course, in the order given. `full` reads every course."""
    if now.tzinfo is None:
        raise ValueError("naive `now` refused: give a time zone")
    if full:
        return [CoursePlan(c.platform, c.context_id, True, "full read") for c in courses]
    keys = list(dict.fromkeys((c.platform, c.context_id) for c in courses))
    facts: dict[tuple[str, str], _Facts] = {}
    with m.session_scope(m.make_engine(database_url)) as s:
        for i in range(0, len(keys), CHUNK):
            facts.update(_load_facts(s, keys[i:i + CHUNK]))
    audit = settings.audit
    return [_decide(c.platform, c.context_id, facts.get((c.platform, c.context_id), _Facts()), now,
                    timedelta(days=audit.ended_grace_days), audit.rolling_days) for c in courses]


# ---- the rules ----------------------------------------------------------------------------------
def _decide(platform: str, ctx: str, f: _Facts, now: datetime, grace: timedelta, rolling_days: int) -> CoursePlan:
    def plan(read: bool, reason: str) -> CoursePlan:
        return CoursePlan(platform, ctx, read, reason)

    if f.starts_at is not None and f.starts_at > now:
        return plan(False, "not started yet")
    last = f.last
    if f.ends_at is not None and f.ends_at + grace < now:
        if last is None or last.started_at <= f.ends_at + grace:
            return plan(True, "final audit after the course ended")
        if last.clean:
            change = _change_since(f, last.started_at)
            return plan(True, f"ended, but {change}") if change else plan(False, "ended; final audit was clean")
        if _due(last.started_at, now, ENDED_RECHECK_DAYS):
            return plan(True, "ended, not clean yet: weekly re-check")
        return plan(False, "ended, not clean yet: re-checked weekly")
    # Active (or ended within its grace: late grades and fixes still land then).
    if last is None or not last.ever_audited:
        return plan(True, "never audited")
    if last.status != "audited":
        return plan(True, "last audit could not read the course")
    if last.has_findings:
        return plan(True, "open findings are watched nightly")
    if last.reason:
        return plan(True, "some grades could not be checked last time")
    change = _change_since(f, last.started_at)
    if change:
        return plan(True, change)
    if rolling_slot(platform, ctx, rolling_days) == night_number(now) % rolling_days:
        return plan(True, f"clean and unchanged: its night of the {rolling_days}-night round")
    if _due(last.started_at, now, rolling_days):
        return plan(True, f"clean and unchanged, last read {round((now - last.started_at) / timedelta(days=1))} days ago")
    return plan(False, f"clean and unchanged: read once every {rolling_days} nights")


_CHANGE_WORDS = {"completion": "new or changed completions", "passback": "new passbacks in the tool's log",
                 "resync": "a resync ran"}


def _change_since(f: _Facts, since: datetime) -> str | None:
    """Words for what changed in the tool's records after `since`, or None."""
    kinds = [k for k, at in f.changes if at is None or at > since]
    if not kinds:
        return None
    return " and ".join(_CHANGE_WORDS[k] for k in kinds) + " since the last clean audit"


def _due(last: datetime, now: datetime, days: int) -> bool:
    return now - last >= timedelta(days=days) - _SLACK


def night_number(now: datetime) -> int:
    """The night's day number: its UTC date as an ordinal (consecutive nights differ by one)."""
    return now.astimezone(timezone.utc).date().toordinal()


def rolling_slot(platform: str, context_id: str, rolling_days: int) -> int:
    """The course's night in each round of `rolling_days` nights: a stable hash (not Python's hash(),
    which changes per process) of "platform/context_id", so the courses spread evenly over the nights."""
    digest = hashlib.sha256(f"{platform}/{context_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % rolling_days


# ---- the facts, set-based -----------------------------------------------------------------------
def _whole_course_run():
    """Runs that audited whole courses: not resyncs, not an on-demand audit narrowed to some
    activities (it says nothing about the others). JSON null / absent / [] = no narrowing."""
    acts = m.AuditRun.params["activities"].as_string()
    return (m.AuditRun.kind != "resync") & or_(acts.is_(None), acts == "[]")


def _load_facts(s, keys: list[tuple[str, str]]) -> dict[tuple[str, str], _Facts]:
    dates = {(p, c): (start, end) for p, c, start, end in s.execute(
        select(m.Course.platform, m.Course.context_id, m.Course.starts_at, m.Course.ends_at)
        .where(tuple_(m.Course.platform, m.Course.context_id).in_(keys), m.Course.retired_at.is_(None)))}
    last = _last_audits(s, keys)
    changes = _change_marks(s, keys)
    out = {}
    for key in keys:
        start, end = dates.get(key, (None, None))
        out[key] = _Facts(start, end, last.get(key), tuple(changes.get(key, ())))
    return out


def _last_audits(s, keys: list[tuple[str, str]]) -> dict[tuple[str, str], _LastAudit]:
    """Each course's latest whole-course audit, whether that run has findings for it, and whether any
    run ever audited it: one query (a window over course_audit, an EXISTS on finding)."""
    CA, AR, F = m.CourseAudit, m.AuditRun, m.Finding
    course = (CA.platform, CA.context_id)
    ranked = (select(CA.platform, CA.context_id, CA.run_id, CA.status, CA.reason, AR.started_at,
                     func.row_number().over(partition_by=course,
                                            order_by=(AR.started_at.desc(), CA.run_id.desc())).label("rn"),
                     func.max(case((CA.status == "audited", 1), else_=0)).over(partition_by=course).label("ever"))
              .join(AR, AR.id == CA.run_id)
              .where(tuple_(*course).in_(keys), _whole_course_run())
              .subquery())
    has_findings = exists().where(F.run_id == ranked.c.run_id, F.platform == ranked.c.platform,
                                  F.context_id == ranked.c.context_id)
    rows = s.execute(select(ranked.c.platform, ranked.c.context_id, ranked.c.started_at, ranked.c.status,
                            ranked.c.reason, has_findings.label("has_findings"), ranked.c.ever)
                     .where(ranked.c.rn == 1))
    return {(p, c): _LastAudit(started, status, reason, bool(hf), bool(ever))
            for p, c, started, status, reason, hf, ever in rows}


def _change_marks(s, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[tuple[str, datetime | None]]]:
    """Per course, the latest change mark of each kind: completions of the activities linked in the
    course (any launch context: another course's completion can be expected here), the course's
    passbacks, its resync attempts. A row without a mark counts as changed now. Retired rows count
    too: a completion that changed and then left the export changed all the same.
    Course and link rows carry no change mark (models/tool_records.py): a new link or new dates are
    seen at the latest on the course's rolling night (docs/night-reads.md)."""
    L, C, P, T, A = m.Link, m.Completion, m.Passback, m.ResyncTask, m.ResyncAttempt
    queries = {
        "completion": select(L.platform, L.context_id, func.max(C.changed_at), func.count() - func.count(C.changed_at))
        .join(C, C.activity_id == L.activity_id)
        .where(tuple_(L.platform, L.context_id).in_(keys)).group_by(L.platform, L.context_id),
        "passback": select(P.platform, P.context_id, func.max(P.imported_at), func.count() - func.count(P.imported_at))
        .where(tuple_(P.platform, P.context_id).in_(keys)).group_by(P.platform, P.context_id),
        "resync": select(T.platform, T.context_id, func.max(A.started_at), 0)
        .join(A, A.task_id == T.id)
        .where(tuple_(T.platform, T.context_id).in_(keys)).group_by(T.platform, T.context_id),
    }
    out: dict[tuple[str, str], list[tuple[str, datetime | None]]] = {}
    for kind, q in queries.items():
        for platform, ctx, latest, unmarked in s.execute(q):
            out.setdefault((platform, ctx), []).append((kind, None if unmarked else latest))
    return out
