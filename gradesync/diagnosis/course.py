"""Diagnose one course: course-, item- and learner-level causes with design.md's precedence.

Pure: data in, findings out — no I/O, no clock, no Prefect. The rules: docs/diagnosis-rules.md.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from lti_client.types import ErrorKind, LineItem, Member

from gradesync.findings import CourseStatus, Finding

from .actions import ACTIONS
from .expected import TOLERANCE, ExpectedGrade, expected_grades, line_item_for_link
from .inputs import CourseRecords, CourseSnapshot, Passback, PlatformRecords, ScoreGrant
from .refusals import score_refusal_kind

ITEM_HEURISTIC_MIN_EXPECTED = 3


@dataclass
class CourseDiagnosis:
    status: CourseStatus
    findings: list[Finding] = field(default_factory=list)
    expected: list[ExpectedGrade] = field(default_factory=list)   # the expected-grade frame rows

    @property
    def expected_count(self) -> int:
        return len(self.expected)

    @property
    def present_count(self) -> int:
        return sum(1 for g in self.expected if g.lms_norm is not None)


def _finding(category: str, course: CourseRecords, **kw) -> Finding:
    return Finding(category=category, platform=course.course.platform, context_id=course.course.context_id,
                   action=ACTIONS[category], **kw)


def diagnose_course(rec: PlatformRecords, course: CourseRecords, snap: CourseSnapshot, grant: ScoreGrant,
                    gaps: set[tuple[str, str]] | None = None,
                    rows: list[ExpectedGrade] | None = None) -> CourseDiagnosis:
    """All findings of one course. `gaps` = (line_item_id, lms_user_id) of the expected grades that
    failed validation (the GX completion_sync suite); None ⇒ decide in-sync here. `rows` = the
    course's expected grades when already computed."""
    c = course.course
    if snap.error is not None:
        err = snap.error
        reason = f"{err.status or ''} {err.message}".strip() + (f" ({err.url})" if err.url else "")
        status = CourseStatus(c.platform, c.context_id, "unverified", reason, c.title)
        if not grant.granted and not grant.unavailable:
            return CourseDiagnosis(status, [_finding("grades_not_accepted", course, evidence={"token": grant.detail})])
        if err.kind == ErrorKind.course_unreachable:
            return CourseDiagnosis(status, [_finding("course_unreachable", course, evidence={
                "status": err.status, "error_type": err.error_type, "message": err.message, "url": err.url})])
        return CourseDiagnosis(status)   # LMS faults never produce findings

    status = CourseStatus(c.platform, c.context_id, "audited", None, c.title)
    rows = rows if rows is not None else expected_grades(rec, course, snap)
    if not grant.granted:
        if grant.unavailable:
            return CourseDiagnosis(CourseStatus(c.platform, c.context_id, "unverified", grant.detail, c.title),
                                   [], rows)
        return CourseDiagnosis(status, [_finding("grades_not_accepted", course, evidence={"token": grant.detail})], rows)

    findings: list[Finding] = []
    blocked_links: set[str] = set()
    findings += _link_not_graded(course, snap, blocked_links)
    findings += _item_not_active(rec, course, snap, rows, blocked_links)

    roster = {m.user_id: m for m in snap.members}
    items = {li.id: li for li in snap.line_items}
    passbacks = _passbacks_by_row(course.passbacks)
    for g in rows:
        if g.resource_link_id in blocked_links:
            continue
        gap = (g.line_item_id, g.lms_user_id) in gaps if gaps is not None else not g.in_sync
        if not gap:
            continue
        category, evidence = classify_gap(rec, course, g, roster.get(g.lms_user_id), items.get(g.line_item_id),
                                          passbacks.get((g.resource_link_id, g.lms_user_id), []))
        r = g.result
        findings.append(_finding(
            category, course, resource_link_id=g.resource_link_id, activity_id=g.activity_id,
            line_item_id=g.line_item_id, account_id=g.account_id, lms_user_id=g.lms_user_id,
            tool_score=g.completion.score_given, tool_maximum=g.completion.score_maximum,
            lms_score=r.result_score if r else None, lms_maximum=r.result_maximum if r and r.result_score is not None else None,
            evidence=evidence))
    return CourseDiagnosis(status, findings, rows)


def _link_not_graded(course: CourseRecords, snap: CourseSnapshot, blocked: set[str]) -> list[Finding]:
    out = []
    for link in course.links:
        if link.graded and line_item_for_link(snap.line_items, link.resource_link_id) is None:
            blocked.add(link.resource_link_id)
            out.append(_finding("link_not_graded", course, resource_link_id=link.resource_link_id,
                                activity_id=link.activity_id, evidence={
                                    "graded_in_tool": True, "line_items_in_course": len(snap.line_items)}))
    return out


def _item_not_active(rec: PlatformRecords, course: CourseRecords, snap: CourseSnapshot,
                     rows: list[ExpectedGrade], blocked: set[str]) -> list[Finding]:
    latest_by_link: dict[str, Passback] = {}
    for p in course.passbacks:
        cur = latest_by_link.get(p.resource_link_id)
        if cur is None or p.timestamp >= cur.timestamp:
            latest_by_link[p.resource_link_id] = p
    by_link: dict[str, list[ExpectedGrade]] = defaultdict(list)
    for g in rows:
        by_link[g.resource_link_id].append(g)
    scored_items = {li_id for li_id, results in snap.results.items()
                    if any(r.result_score is not None for r in results)}
    out = []
    for link in course.links:
        if not link.graded or link.resource_link_id in blocked:
            continue
        item = line_item_for_link(snap.line_items, link.resource_link_id)
        if item is None:
            continue
        evidence: dict | None = None
        last = latest_by_link.get(link.resource_link_id)
        if last is not None and score_refusal_kind(rec.vendor, last.status_code, last.response) == ErrorKind.item_inactive:
            evidence = {"refused_at": last.timestamp.isoformat(), "status": last.status_code,
                        "response": last.response[:300]}
        else:
            expected = by_link.get(link.resource_link_id, [])
            present = [g for g in expected if g.lms_norm is not None]
            others_scored = bool(scored_items - {item.id})
            if len(expected) >= ITEM_HEURISTIC_MIN_EXPECTED and not present and others_scored:
                evidence = {"expected": len(expected), "present": 0, "other_items_with_results": len(scored_items - {item.id})}
        if evidence is not None:
            blocked.add(link.resource_link_id)
            out.append(_finding("item_not_active", course, resource_link_id=link.resource_link_id,
                                activity_id=link.activity_id, line_item_id=item.id, evidence=evidence))
    return out


def _passbacks_by_row(passbacks: list[Passback]) -> dict[tuple[str, str], list[Passback]]:
    by_row: dict[tuple[str, str], list[Passback]] = defaultdict(list)
    for p in passbacks:
        by_row[(p.resource_link_id, p.lms_user_id)].append(p)
    for lst in by_row.values():
        lst.sort(key=lambda p: p.timestamp)
    return by_row


def _outside(t: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is not None and t < start) or (end is not None and t > end)


def classify_gap(rec: PlatformRecords, course: CourseRecords, g: ExpectedGrade, member: Member | None,
                 item: LineItem | None, passbacks: list[Passback]) -> tuple[str, dict]:
    """The one learner-level category of a gap, first match in design.md order, with its evidence."""
    c = course.course
    comp = g.completion
    # not_learner: absent from the roster, not a Learner, or not Active
    if member is None:
        return "not_learner", {"roster": "absent"}
    if not member.is_learner:
        return "not_learner", {"roster": "present", "roles": list(member.roles)}
    if not member.is_active:
        return "not_learner", {"roster": "present", "status": member.status}
    # duplicate_account: the linked account has no completion; a same-email account has it
    linked = rec.account_by_lms_user.get(g.lms_user_id)
    if linked is not None and comp.account_id != linked:
        return "duplicate_account", {"linked_account": linked, "completed_in_account": comp.account_id,
                                     "email": rec.account_email.get(linked)}
    # launched_outside_course: no launch context, or another course's
    if not comp.context_id or comp.platform != c.platform or comp.context_id != c.context_id:
        where = f"{comp.platform}/{comp.context_id}" if comp.context_id else "no launch context (manual login)"
        return "launched_outside_course", {"completion_context": where}
    # outside_course_dates: course window, or the line item's window when given
    if _outside(comp.completed_at, c.starts_at, c.ends_at):
        return "outside_course_dates", {"completed_at": comp.completed_at.isoformat(),
                                        "starts_at": c.starts_at.isoformat() if c.starts_at else None,
                                        "ends_at": c.ends_at.isoformat() if c.ends_at else None}
    if item is not None and _outside(comp.completed_at, item.start_date_time, item.end_date_time):
        return "outside_course_dates", {"completed_at": comp.completed_at.isoformat(),
                                        "line_item_start": item.start_date_time.isoformat() if item.start_date_time else None,
                                        "line_item_end": item.end_date_time.isoformat() if item.end_date_time else None}
    # manual_grade_conflict: signs of a person's edit, or a resend refused as older
    conflict = _manual_edit_signs(rec, g, passbacks)
    if conflict is not None:
        return "manual_grade_conflict", conflict
    if g.lms_norm is not None:
        return "score_mismatch", {"tool_normalised": round(g.tool_norm, 6), "lms_normalised": round(g.lms_norm, 6)}
    return "missing_in_lms", {"passbacks": len(passbacks),
                              "last_status": passbacks[-1].status_code if passbacks else None}


def _manual_edit_signs(rec: PlatformRecords, g: ExpectedGrade, passbacks: list[Passback]) -> dict | None:
    latest = passbacks[-1] if passbacks else None
    if latest is not None and score_refusal_kind(rec.vendor, latest.status_code, latest.response) == ErrorKind.stale_timestamp:
        return {"refused_as_stale_at": latest.timestamp.isoformat(), "status": latest.status_code,
                "response": latest.response[:300]}
    r = g.result
    if r is None or r.result_score is None:
        return None
    if r.scoring_user_id:
        return {"scoring_user_id": r.scoring_user_id}
    accepted = [p for p in passbacks if p.accepted and p.score_given is not None and p.score_maximum]
    last_ok = accepted[-1] if accepted else None
    lms = g.lms_norm
    if last_ok is not None:
        sent = last_ok.score_given / last_ok.score_maximum
        if abs(sent - lms) > TOLERANCE:
            return {"last_sent": f"{last_ok.score_given:g}/{last_ok.score_maximum:g}",
                    "last_sent_at": last_ok.timestamp.isoformat(), "lms_normalised": round(lms, 6)}
        if r.timestamp is not None and int(r.timestamp.timestamp()) > int(last_ok.timestamp.timestamp()):
            return {"result_timestamp": r.timestamp.isoformat(), "last_sent_at": last_ok.timestamp.isoformat()}
    # No accepted send on record: a timestamp alone cannot be "later" than anything (design.md), so
    # without a scorer this is a score_mismatch; a resend the platform refuses as stale reclassifies it.
    return None
