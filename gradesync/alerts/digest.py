"""What a digest says, as plain data: counts by category, new / still open / resolved, the most affected
courses, the courses that could not be audited and the report link. Rendering lives in render.py."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import PurePath

from gradesync.findings import CATEGORIES, CourseStatus, Finding, RunSummary

TOP_COURSES = 5


@dataclass(frozen=True)
class CourseLine:
    platform: str
    context_id: str
    title: str | None
    findings: int
    new: int
    by_category: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class DigestView:
    run_id: int
    kind: str
    state: str
    total: int
    new: int
    still_open: int
    resolved: int
    by_category: tuple[tuple[str, int, int], ...]          # (category, findings, of which new), nonzero only
    resolved_by_category: tuple[tuple[str, int], ...]
    top_courses: tuple[CourseLine, ...]
    courses_with_findings: int
    unverified: tuple[CourseStatus, ...]
    report: str | None
    scope: str = ""                                        # "" for everything, else the route's filter
    audited_courses: int = 0
    approvals: tuple[str, ...] = ()                        # "who: n approved (k verified)"


def report_link(report_path: str | None, base_url: str | None) -> str | None:
    """report_base_url + the report's file name when reports are published, else the local path."""
    if not report_path:
        return None
    if base_url:
        return base_url.rstrip("/") + "/" + PurePath(report_path).name
    return report_path


def _ordered(counter: Counter) -> list[str]:
    known = [c for c in CATEGORIES if counter.get(c)]
    return known + sorted(c for c in counter if c not in CATEGORIES)


def build_digest_view(summary: RunSummary, findings: list[Finding], resolved: list[Finding],
                      unverified: list[CourseStatus], *, report: str | None, scope: str = "",
                      top_n: int = TOP_COURSES) -> DigestView:
    """Digest numbers for one recipient; `findings`/`resolved`/`unverified` are already filtered to it."""
    new_ids = summary.new
    cats = Counter(f.category for f in findings)
    new_cats = Counter(f.category for f in findings if f.identity in new_ids)
    res_cats = Counter(f.category for f in resolved)
    titles = {(c.platform, c.context_id): c.title for c in summary.courses}

    per_course: dict[tuple[str, str], Counter] = {}
    new_per_course: Counter = Counter()
    for f in findings:
        key = (f.platform, f.context_id)
        per_course.setdefault(key, Counter())[f.category] += 1
        if f.identity in new_ids:
            new_per_course[key] += 1
    # Most findings first; ties broken by platform/context so the digest is stable night to night.
    ranked = sorted(per_course.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))[:top_n]
    top = tuple(
        CourseLine(platform=p, context_id=c, title=titles.get((p, c)), findings=sum(cnt.values()),
                   new=new_per_course[(p, c)], by_category=tuple((k, cnt[k]) for k in _ordered(cnt)))
        for (p, c), cnt in ranked)

    n_new = sum(new_cats.values())
    return DigestView(
        run_id=summary.run_id, kind=summary.kind, state=summary.state,
        total=len(findings), new=n_new, still_open=len(findings) - n_new, resolved=len(resolved),
        by_category=tuple((c, cats[c], new_cats[c]) for c in _ordered(cats)),
        resolved_by_category=tuple((c, res_cats[c]) for c in _ordered(res_cats)),
        top_courses=top, courses_with_findings=len(per_course), unverified=tuple(unverified),
        report=report, scope=scope,
        audited_courses=sum(1 for c in summary.courses if c.status == "audited"),
        approvals=approval_lines(summary),
    )


def approval_lines(summary: RunSummary) -> tuple[str, ...]:
    """Supersedes of manual grades approved since the previous audit, per approver."""
    by: dict[str, Counter] = {}
    for who, _platform, state in summary.approvals:
        by.setdefault(who, Counter())[state] += 1
    return tuple(f"{who}: {sum(c.values())} approved ({c['verified']} verified in the LMS)"
                 for who, c in sorted(by.items()))


def fallback_text(v: DigestView) -> str:
    """The notification text: total findings and how many are new (what a phone lock screen shows)."""
    scope = f" [{v.scope}]" if v.scope else ""
    text = f"gradesync {v.kind} audit run {v.run_id}{scope}: {v.total} findings ({v.new} new)"
    extra = []
    if v.resolved:
        extra.append(f"{v.resolved} resolved")
    if v.unverified:
        extra.append(f"could not audit {len(v.unverified)} course{'s' if len(v.unverified) != 1 else ''}")
    return text + (", " + ", ".join(extra) if extra else "")
