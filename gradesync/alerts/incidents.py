"""Course-wide incidents: what they are (detect_incidents) and whether tonight's run must announce one,
remind about it, or stay quiet (incident_decision). Pure functions over plain data."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from gradesync.alerts.vendor_terms import action_for, no_grades_checklist
from gradesync.diagnosis.inputs import CREDENTIALS_REJECTED
from gradesync.findings import CourseStatus, Finding, RunSummary

NO_GRADES_MIN_EXPECTED = 3        # design.md: "none of at least 3 expected grades is present"
DELIVERED = frozenset({"sent", "console"})

# seed-grade-sync-troubleshooting.txt, "If no grades are syncing in the course at all" — verbatim order.
# Used as is only when the platform's vendor is not known; otherwise vendor_terms.no_grades_checklist
# keeps only that LMS's own steps (no Canvas Blueprints for a Moodle course).
NO_GRADES_CHECKLIST = (
    "The tool is configured to accept grades in the LMS: check the tool's configuration against the "
    "install documentation for this LMS.",
    "Canvas Blueprints: the graded items must be set to 'Unlocked' in the Blueprint before syncing the course.",
    "Canvas deployment scope: in a Canvas shared between several institutions, check the deployment "
    "scope with your Implementation Manager.",
)
# A refused key, client id or clock says nothing about grades (design.md grades_not_accepted): name the fix.
CREDENTIALS_CHECKLIST = (
    "Key rotation: the platform must hold the tool's current public key (its JWKS / public key field) "
    "under the key id gradesync sends (`key_id`); re-register the key after a rotation.",
    "Client id and token URL: check `client_id`, `token_url` (and D2L's `audience`) against the platform's "
    "registration of the tool.",
    "Clock: the assertion's iat/exp must be within the platform's tolerance (Canvas: iat at most 5 min old, "
    "30 s ahead): check the auditing machine's clock (NTP).",
)
PLATFORM_CHECKLIST = (
    "Check the platform's status page and that the tool's registration (token URL, client id, "
    "deployment) is still valid.",
    "No learner findings were produced for these courses: the next successful run audits them again.",
)


@dataclass(frozen=True)
class Incident:
    """One course-wide problem; `key` is stable across runs for as long as the problem lasts."""
    key: str
    # grades_not_accepted | credentials_rejected | course_unreachable | platform_unreachable | no_grades_syncing
    kind: str
    platform: str
    headline: str
    details: tuple[str, ...]
    checklist: tuple[str, ...]
    categories: frozenset[str]      # what a route's category filter matches against
    evidence: frozenset[str] = frozenset()   # identities of the findings behind it (reopen detection)
    context_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertRecord:
    """A row of alert_log as plain data (what the decision functions need to know about the past)."""
    run_id: int
    kind: str                       # digest | incident | reminder
    route: str
    incident_key: str
    status: str                     # sent | failed | console
    sent_at: datetime | None


def _name(platform: str, context_id: str, titles: dict[tuple[str, str], str | None]) -> str:
    t = titles.get((platform, context_id))
    return f"{platform} / {t} ({context_id})" if t else f"{platform} / {context_id}"


def detect_incidents(summary: RunSummary, vendors: dict[str, str] | None = None) -> list[Incident]:
    """The run's course-wide incidents, one per problem (not one per learner or per course where the
    whole platform is the problem), in a stable order. `vendors` (platform → vendor) words checklists in
    each LMS's own terms (vendor_terms.py); for a platform it does not name, the seed's wording is used."""
    def vendor(p: str) -> str | None:
        return (vendors or {}).get(p)

    titles = {(c.platform, c.context_id): c.title for c in summary.courses}
    reasons = {(c.platform, c.context_id): c.reason for c in summary.courses}
    courses_by_platform: dict[str, list[CourseStatus]] = defaultdict(list)
    for c in summary.courses:
        courses_by_platform[c.platform].append(c)
    by_course: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    gna: dict[str, list[Finding]] = defaultdict(list)
    unreachable: dict[str, list[Finding]] = defaultdict(list)
    for f in summary.findings:
        by_course[(f.platform, f.context_id)].append(f)
        if f.category == "grades_not_accepted":
            gna[f.platform].append(f)
        elif f.category == "course_unreachable":
            unreachable[f.platform].append(f)

    out: list[Incident] = []
    # grades_not_accepted is decided at the token endpoint, so diagnosis emits it for every course of
    # the platform (diagnosis-rules.md, Course level): one incident per platform, listing the courses.
    for p, fs in sorted(gna.items()):
        fs = sorted(fs, key=lambda f: f.context_id)
        out.append(Incident(
            key=f"grades_not_accepted|{p}", kind="grades_not_accepted", platform=p,
            headline=f"Grades not accepted on {p} ({len(fs)} course{'s' if len(fs) != 1 else ''})",
            details=tuple(f"• {_name(p, f.context_id, titles)}" for f in fs),
            # The finding's own action says the same as the seed's first check: say it once.
            checklist=(fs[0].action or NO_GRADES_CHECKLIST[0],),
            categories=frozenset({"grades_not_accepted"}), evidence=frozenset(f.identity for f in fs),
            context_ids=tuple(f.context_id for f in fs)))

    rejected: dict[str, list[CourseStatus]] = defaultdict(list)
    for c in summary.courses:
        if c.status == "unverified" and (c.reason or "").startswith(CREDENTIALS_REJECTED):
            rejected[c.platform].append(c)
    for p, cs in sorted(rejected.items()):
        # One incident per platform, in every kind of run: no course of it can be audited until fixed.
        out.append(Incident(
            key=f"credentials_rejected|{p}", kind="credentials_rejected", platform=p,
            headline=f"Credentials rejected on {p}: {len(cs)} course{'s' if len(cs) != 1 else ''} could not be audited",
            details=(f"• {cs[0].reason}",), checklist=CREDENTIALS_CHECKLIST,
            categories=frozenset({"course_unreachable"}), context_ids=tuple(sorted(c.context_id for c in cs))))

    wholly_down: set[str] = set(rejected)
    for p, cs in sorted(courses_by_platform.items()):
        if p in gna or p in rejected or not cs or any(c.status != "unverified" for c in cs):
            continue
        if len(cs) == 1 and summary.kind != "nightly":
            # An on-demand audit of one course says nothing about the rest of the platform.
            continue
        wholly_down.add(p)
        why = Counter(c.reason or "unknown reason" for c in cs)
        scope = f"none of its {len(cs)} courses" if len(cs) > 1 else "its only course"
        out.append(Incident(
            key=f"platform_unreachable|{p}", kind="platform_unreachable", platform=p,
            headline=f"Platform unreachable: {p} — {scope} could be audited",
            details=tuple(f"• {r}: {n} course{'s' if n != 1 else ''}" for r, n in why.most_common()),
            checklist=PLATFORM_CHECKLIST, categories=frozenset({"course_unreachable"}),
            evidence=frozenset(f.identity for f in unreachable.get(p, [])),
            context_ids=tuple(sorted(c.context_id for c in cs))))

    for p, fs in sorted(unreachable.items()):
        if p in wholly_down or p in gna:     # the platform-wide incident already says it
            continue
        for f in sorted(fs, key=lambda f: f.context_id):
            reason = reasons.get((p, f.context_id)) or f.evidence.get("reason") or f.evidence.get("status")
            out.append(Incident(
                key=f"course_unreachable|{p}|{f.context_id}", kind="course_unreachable", platform=p,
                headline=f"Course unreachable: {_name(p, f.context_id, titles)}",
                details=(f"• {reason}",) if reason else (),
                checklist=((action_for("course_unreachable", vendor(p), f.action),) if vendor(p)
                           else (f.action,) if f.action else NO_GRADES_CHECKLIST[2:]),
                categories=frozenset({"course_unreachable"}), evidence=frozenset({f.identity}),
                context_ids=(f.context_id,)))

    unverified = {(c.platform, c.context_id) for c in summary.courses if c.status == "unverified"}
    for (p, c), expected in sorted(summary.expected_grades.items()):
        present = summary.present_grades.get((p, c), 0)
        if expected < NO_GRADES_MIN_EXPECTED or present > 0 or (p, c) in unverified or p in gna:
            continue
        fs = by_course.get((p, c), [])
        if any(f.level == "course" for f in fs):
            continue
        out.append(Incident(
            key=f"no_grades_syncing|{p}|{c}", kind="no_grades_syncing", platform=p,
            headline=f"No grades syncing in {_name(p, c, titles)}",
            details=(f"• 0 of {expected} expected grades are in the LMS gradebook",),
            checklist=no_grades_checklist(vendor(p)) if vendor(p) else NO_GRADES_CHECKLIST,
            categories=frozenset(f.category for f in fs) or frozenset({"missing_in_lms"}),
            evidence=frozenset(f.identity for f in fs), context_ids=(c,)))
    return out


def is_reopened(incident: Incident, new_identities: set[str]) -> bool:
    """True when none of the incident's findings was open in the previous run: it resolved and came back.
    Without findings behind it (e.g. a token endpoint outage) we cannot tell, and say False."""
    return bool(incident.evidence) and incident.evidence <= new_identities


def incident_decision(incident_key: str, route: str, history: list[AlertRecord], *, run_id: int,
                      now: datetime, reminder_days: int, reopened: bool) -> str | None:
    """"incident" (first time, reopened, or never delivered), "reminder" (delivered ≥ reminder_days ago
    and still open), or None (announced recently, or already delivered by this run)."""
    rows = [r for r in history if r.route == route and r.incident_key == incident_key
            and r.kind in ("incident", "reminder")]
    if any(r.run_id == run_id and r.status in DELIVERED for r in rows):
        return None                                          # a re-run of the same audit run
    earlier = [r for r in rows if r.run_id != run_id and r.status in DELIVERED and r.sent_at]
    if not earlier or reopened:
        return "incident"
    last = max(r.sent_at for r in earlier)
    return "reminder" if now - last >= timedelta(days=reminder_days) else None


def open_since(incident_key: str, route: str, history: list[AlertRecord]) -> datetime | None:
    """When the current episode was first announced to this route (latest delivered 'incident' row)."""
    times = [r.sent_at for r in history if r.route == route and r.incident_key == incident_key
             and r.kind == "incident" and r.status in DELIVERED and r.sent_at]
    return max(times) if times else None
