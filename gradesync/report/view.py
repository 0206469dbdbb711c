"""The report's content as plain data, computed from a RunSummary; templates only lay it out."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gradesync.alerts.vendor_terms import action_for
from gradesync.findings import CourseStatus, DataQualityWarning, Finding, RunSummary, level_of
from gradesync.report.categories import colour_of, meaning_of, ordered_categories, short_of
from gradesync.report.evidence import ScoreContext, evidence_in_words
from gradesync.report.people import Directory, directory_from_summary



@dataclass(frozen=True)
class CategoryLine:
    category: str
    level: str
    meaning: str
    colour: str
    count: int
    new: int
    resolved: int


@dataclass(frozen=True)
class Column:
    category: str
    short: str
    colour: str


@dataclass(frozen=True)
class CourseLine:
    platform: str
    context_id: str
    title: str | None
    status: str
    reason: str | None
    expected: int | None
    present: int | None
    counts: tuple[int, ...]            # aligned with ReportView.course_columns
    total: int


@dataclass(frozen=True)
class FindingRow:
    category: str
    platform: str
    course: str                         # the course's title, else its context id
    course_key: str                     # "platform/context_id": the course filter's value
    activity: str                       # the activity's title, else its id; "whole course" for course level
    learner: str                        # the learner's name, else an id; "—" above learner level
    email: str                          # the learner's email, if known
    tool_score: str
    lms_score: str
    action: str
    evidence: str                       # in plain words
    details: tuple[tuple[str, str], ...]   # ids and URLs, behind a toggle
    status: str                         # new | open | resolved

    @property
    def new(self) -> bool:
        return self.status == "new"


@dataclass(frozen=True)
class CourseOption:
    key: str
    label: str


@dataclass(frozen=True)
class FindingGroup:
    category: str
    colour: str
    meaning: str
    total: int
    rows: tuple[FindingRow, ...]        # at most the cap; `total - len(rows)` are in the CSV only


@dataclass(frozen=True)
class RequestLine:
    platform: str
    by_kind: tuple[int, ...]            # aligned with ReportView.request_kinds
    total: int
    retries: int
    throttled: int
    throttle_wait_s: float


@dataclass(frozen=True)
class ReportView:
    run_id: int
    kind: str
    state: str
    started_at: str
    finished_at: str
    duration: str
    total: int
    new: int
    still_open: int
    resolved: int
    audited: int
    unverified: tuple[CourseStatus, ...]
    not_read: tuple[tuple[str, int], ...]
    expected_grades: int
    present_grades: int
    categories: tuple[CategoryLine, ...]
    course_columns: tuple[Column, ...]
    courses: tuple[CourseLine, ...]
    groups: tuple[FindingGroup, ...]
    row_cap: int
    course_options: tuple[CourseOption, ...]
    resolved_rows: tuple[FindingRow, ...]
    dq_warnings: tuple[DataQualityWarning, ...]
    dq_total: int
    request_kinds: tuple[str, ...]
    requests: tuple[RequestLine, ...]
    alert_failures: tuple[str, ...]


def fmt_time(t: datetime | None) -> str:
    return t.isoformat(sep=" ", timespec="seconds") if t else "—"


def fmt_duration(start: datetime, end: datetime | None) -> str:
    if end is None:
        return "—"
    secs = max(0, int((end - start).total_seconds()))
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


def fmt_score(score: float | None, maximum: float | None) -> str:
    """"8 / 10 · 80%": the score, its maximum and the normalised value (what the audit compares)."""
    if score is None:
        return "—"
    s = f"{score:g}"
    if maximum is None:
        return s
    pct = f" · {score / maximum * 100:.0f}%" if maximum else ""
    return f"{s} / {maximum:g}{pct}"


def finding_evidence(f: Finding, people: Directory, today: datetime | None = None):
    """The finding's evidence in words (+ ids/URLs apart), with its scores and the LMS result's time."""
    ctx = ScoreContext(f.tool_score, f.tool_maximum, f.lms_score, f.lms_maximum, people.lms_since(f), today,
                       people.account_labels())
    return evidence_in_words(f.category, f.evidence, ctx)


def finding_row(f: Finding, people: Directory, status: str, today: datetime | None = None) -> FindingRow:
    """One finding as a person reads it: names and titles first, ids and URLs in `details`."""
    title = people.course_title(f.platform, f.context_id)
    person = people.learner(f) if f.level == "learner" else None
    if f.level == "learner":
        learner = (person.name if person and person.name else None) or f.account_id or f.lms_user_id or "—"
    else:
        learner = "—"
    activity = people.activity_title(f) or f.activity_id or f.resource_link_id
    if f.level == "course":
        activity = "whole course"
    ev = finding_evidence(f, people, today)
    ids = [("platform", f.platform), ("course id", f.context_id), ("resource link", f.resource_link_id),
           ("activity id", f.activity_id), ("line item", f.line_item_id), ("account", f.account_id),
           ("LMS user", f.lms_user_id)]
    details = tuple((k, v) for k, v in ids if v) + ev.details
    return FindingRow(f.category, f.platform, title or f.context_id, f"{f.platform}/{f.context_id}",
                      activity or "—", learner, (person.email or "") if person else "",
                      fmt_score(f.tool_score, f.tool_maximum), fmt_score(f.lms_score, f.lms_maximum),
                      action_for(f.category, people.vendors.get(f.platform), f.action), ev.words, details, status)


def _stats_of(stats: Any) -> tuple[dict[str, int], int, int, float]:
    """RequestStats objects or their dict form (after a round trip through JSON) read alike."""
    get = stats.get if isinstance(stats, dict) else (lambda k, d=None: getattr(stats, k, d))
    return (dict(get("requests", {}) or {}), int(get("retries", 0) or 0), int(get("throttled", 0) or 0),
            float(get("throttle_wait_s", 0.0) or 0.0))


def _request_lines(request_stats: dict[str, Any]) -> tuple[tuple[str, ...], tuple[RequestLine, ...]]:
    parsed = {p: _stats_of(s) for p, s in sorted(request_stats.items())}
    preferred = ("token", "line_items", "results", "memberships", "scores")
    seen = {k for req, *_ in parsed.values() for k in req}
    kinds = tuple([k for k in preferred if k in seen] + sorted(seen - set(preferred)))
    lines = tuple(RequestLine(p, tuple(req.get(k, 0) for k in kinds), sum(req.values()), r, t, w)
                  for p, (req, r, t, w) in parsed.items())
    return kinds, lines


def _course_lines(s: RunSummary, columns: tuple[Column, ...]) -> tuple[CourseLine, ...]:
    per_course: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for f in s.findings:
        per_course[(f.platform, f.context_id)][f.category] += 1
    statuses = {(c.platform, c.context_id): c for c in s.courses}
    keys = list(statuses) + [k for k in per_course if k not in statuses]
    lines = []
    for key in keys:
        c = statuses.get(key)
        counts = per_course.get(key, Counter())
        lines.append(CourseLine(key[0], key[1], c.title if c else None, c.status if c else "not listed",
                                c.reason if c else None, s.expected_grades.get(key), s.present_grades.get(key),
                                tuple(counts.get(col.category, 0) for col in columns), sum(counts.values())))
    # Unverified first (they need a person), then the most affected courses.
    lines.sort(key=lambda c: (c.status != "unverified", -c.total, c.platform, c.context_id))
    return tuple(lines)


def _course_options(s: RunSummary, people: Directory) -> tuple[CourseOption, ...]:
    keys = sorted({(f.platform, f.context_id) for f in [*s.findings, *s.resolved]})
    return tuple(CourseOption(f"{p}/{c}", f"{people.course_title(p, c) or c} ({p})") for p, c in keys)


def build_view(s: RunSummary, *, row_cap: int, people: Directory | None = None) -> ReportView:
    """Everything the report page shows, with at most `row_cap` finding rows per category."""
    people = people or directory_from_summary(s)
    today = s.finished_at or s.started_at
    counts = Counter(f.category for f in s.findings)
    new_counts = Counter(f.category for f in s.findings if f.identity in s.new)
    resolved_counts = Counter(f.category for f in s.resolved)
    cats = ordered_categories(set(counts) | set(resolved_counts))
    categories = tuple(CategoryLine(c, level_of(c), meaning_of(c), colour_of(c), counts.get(c, 0),
                                    new_counts.get(c, 0), resolved_counts.get(c, 0)) for c in cats)
    by_cat: dict[str, list[Finding]] = defaultdict(list)
    for f in s.findings:
        by_cat[f.category].append(f)
    groups = []
    for c in cats:
        fs = by_cat.get(c)
        if not fs:
            continue
        # New findings first: they are the ones a reader has not seen in yesterday's report.
        shown = sorted(fs, key=lambda f: (f.identity not in s.new, f.platform, f.context_id,
                                          f.resource_link_id or "", f.lms_user_id or ""))[:row_cap]
        groups.append(FindingGroup(c, colour_of(c), meaning_of(c), len(fs),
                                   tuple(finding_row(f, people, "new" if f.identity in s.new else "open", today)
                                         for f in shown)))
    columns = tuple(Column(c, short_of(c), colour_of(c)) for c in cats if counts.get(c))
    kinds, requests = _request_lines(s.request_stats)
    unverified = tuple(s.unverified)
    return ReportView(
        run_id=s.run_id, kind=s.kind, state=s.state, started_at=fmt_time(s.started_at),
        finished_at=fmt_time(s.finished_at), duration=fmt_duration(s.started_at, s.finished_at),
        total=len(s.findings), new=sum(1 for f in s.findings if f.identity in s.new),
        still_open=len(s.still_open), resolved=len(s.resolved),
        audited=sum(1 for c in s.courses if c.status == "audited"), unverified=unverified,
        not_read=tuple(sorted(s.not_read.items(), key=lambda kv: -kv[1])),
        expected_grades=sum(s.expected_grades.values()), present_grades=sum(s.present_grades.values()),
        categories=categories, course_columns=columns, courses=_course_lines(s, columns),
        groups=tuple(groups), row_cap=row_cap, course_options=_course_options(s, people),
        resolved_rows=tuple(finding_row(f, people, "resolved", today) for f in s.resolved[:row_cap]),
        dq_warnings=tuple(s.dq_warnings[:row_cap]), dq_total=len(s.dq_warnings),
        request_kinds=kinds, requests=requests, alert_failures=tuple(s.alert_failures))
