"""Diagnose one course: course-, item- and learner-level causes with design.md's precedence.

Pure: data in, findings out — no I/O, no clock, no Prefect. The rules: docs/diagnosis-rules.md.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from lti_client.types import ErrorKind, LineItem, Member

from gradesync.findings import RESYNCABLE, CourseStatus, Finding

from .actions import ACTIONS
from .expected import (TOLERANCE, ExpectedGrade, LinkItem, expected_grades, expected_lms_users,
                       line_item_for_link)
from .inputs import CourseRecords, CourseSnapshot, Passback, PlatformRecords, ScoreGrant
from .refusals import score_refusal_kind, timestamp_at_resolution

ITEM_HEURISTIC_MIN_EXPECTED = 3


@dataclass
class CourseDiagnosis:
    status: CourseStatus
    findings: list[Finding] = field(default_factory=list)
    expected: list[ExpectedGrade] = field(default_factory=list)   # the expected-grade frame rows
    # resource_link_id → why its grades could not be checked (its results could not be read, or its
    # line item cannot be told): no learner findings for it, and the course says so.
    unverified_items: dict[str, str] = field(default_factory=dict)

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
                    gaps: set[tuple[str, str]], rows: list[ExpectedGrade] | None = None) -> CourseDiagnosis:
    """All findings of one course. `gaps` = (line_item_id, lms_user_id) of the expected grades that
    failed validation: the Great Expectations completion_sync suite decides what a gap is (its
    unexpected rows, gradesync/audit/validate.py); the diagnosis only says why. `rows` = the course's
    expected grades when already computed (the frame the suite validated)."""
    c = course.course
    if grant.credentials_rejected:
        # The platform refused the tool's key / client / clock: nothing about this course is known.
        return CourseDiagnosis(CourseStatus(c.platform, c.context_id, "unverified", grant.detail, c.title))
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

    rows = rows if rows is not None else expected_grades(rec, course, snap)
    if not grant.granted:
        if grant.unavailable:
            return CourseDiagnosis(CourseStatus(c.platform, c.context_id, "unverified", grant.detail, c.title),
                                   [], rows)
        return CourseDiagnosis(CourseStatus(c.platform, c.context_id, "audited", None, c.title),
                               [_finding("grades_not_accepted", course, evidence={"token": grant.detail})], rows)

    link_items = {link.resource_link_id: line_item_for_link(snap.line_items, link.resource_link_id, course.passbacks)
                  for link in course.links if link.graded}
    unverified = _unverified_items(rec, course, snap, link_items)
    findings: list[Finding] = []
    blocked_links: set[str] = set(unverified)
    findings += _link_not_graded(course, snap, link_items, blocked_links)
    findings += _item_not_active(rec, course, snap, rows, link_items, blocked_links)

    roster = {m.user_id: m for m in snap.members}
    items = {li.id: li for li in snap.line_items}
    inactive = {f.resource_link_id: f for f in findings if f.category == "item_not_active"}
    for g in rows:
        if g.resource_link_id in blocked_links and g.resource_link_id not in inactive:
            continue
        if (g.line_item_id, g.lms_user_id) not in gaps:
            continue
        category, evidence = classify_gap(rec, course, g, roster.get(g.lms_user_id), items.get(g.line_item_id),
                                          cell_passbacks(course.passbacks, g.resource_link_id, g.line_item_id,
                                                         g.lms_user_id))
        # The chosen completion's time (the resync's submittedAt): one account may hold several.
        evidence.setdefault("completed_at", g.completion.completed_at.isoformat())
        if g.resource_link_id in inactive:
            # Suppressed by the item's finding, but its resync waits there: once a per-run probe is
            # accepted the item's resyncable gaps are sent (design.md "Resync tasks", issue 10 §3).
            if category in RESYNCABLE:
                inactive[g.resource_link_id].evidence.setdefault("blocked_gaps", []).append({
                    "lms_user_id": g.lms_user_id, "account_id": g.account_id, "category": category,
                    "tool_score": g.completion.score_given, "tool_maximum": g.completion.score_maximum,
                    "completed_at": evidence["completed_at"]})
            continue
        r = g.result
        findings.append(_finding(
            category, course, resource_link_id=g.resource_link_id, activity_id=g.activity_id,
            line_item_id=g.line_item_id, account_id=g.account_id, lms_user_id=g.lms_user_id,
            tool_score=g.completion.score_given, tool_maximum=g.completion.score_maximum,
            lms_score=r.result_score if r else None, lms_maximum=r.result_maximum if r and r.result_score is not None else None,
            evidence=evidence))
    reason = None
    if unverified:
        reason = "; ".join(f"link {rl} unverified: {why}" for rl, why in sorted(unverified.items()))[:1000]
    return CourseDiagnosis(CourseStatus(c.platform, c.context_id, "audited", reason, c.title), findings, rows,
                           unverified)


def _unverified_items(rec: PlatformRecords, course: CourseRecords, snap: CourseSnapshot,
                      link_items: dict[str, LinkItem]) -> dict[str, str]:
    """Links whose grades cannot be checked in this run: the line item's results could not be read
    (e.g. Moodle's results paging crash, lti-platform-behavior.md §10), or the line item is ambiguous.
    An item whose results were deliberately not read (`results_not_read`) has nothing to check — unless
    grades are expected there after all (the reading plan missed them): then it is unverified, never a
    gap and never silently skipped."""
    out: dict[str, str] = {}
    learners = [mb for mb in snap.members if mb.is_learner]
    links = {link.resource_link_id: link for link in course.links}
    for rl, li in link_items.items():
        if li.unverified:
            out[rl] = li.unverified
        elif li.item is not None and li.item.id in snap.item_errors:
            err = snap.item_errors[li.item.id]
            out[rl] = f"results could not be read: {err.status or ''} {err.message}".strip()[:300]
        elif li.item is not None and li.item.id in snap.results_not_read \
                and expected_lms_users(rec, course, links[rl], learners):
            out[rl] = "results were not read tonight although grades are expected here"
    return out


def _link_not_graded(course: CourseRecords, snap: CourseSnapshot, link_items: dict[str, LinkItem],
                     blocked: set[str]) -> list[Finding]:
    out = []
    for link in course.links:
        li = link_items.get(link.resource_link_id)
        if link.graded and link.resource_link_id not in blocked and li is not None and li.item is None:
            blocked.add(link.resource_link_id)
            out.append(_finding("link_not_graded", course, resource_link_id=link.resource_link_id,
                                activity_id=link.activity_id, evidence={
                                    "graded_in_tool": True, "line_items_in_course": len(snap.line_items)}))
    return out


def _link_passbacks(passbacks: list[Passback], resource_link_id: str, line_item_id: str) -> list[Passback]:
    """The passbacks of one link: by its resource link, or (tool-created items) by its line item."""
    return [p for p in passbacks if p.resource_link_id == resource_link_id
            or (p.resource_link_id is None and p.line_item_id == line_item_id)]


def cell_passbacks(passbacks: list[Passback], resource_link_id: str, line_item_id: str,
                   lms_user_id: str) -> list[Passback]:
    """The passbacks of one gradebook cell, oldest first (stable: retried rows keep their log order)."""
    mine = [p for p in _link_passbacks(passbacks, resource_link_id, line_item_id) if p.lms_user_id == lms_user_id]
    return sorted(mine, key=lambda p: p.timestamp)


def inactive_refusal(vendor: str, passbacks: list[Passback], resource_link_id: str, line_item_id: str) -> Passback | None:
    """The link's latest *answered* send when the platform refused it as an inactive item (a timed-out
    row says nothing about the item), else None."""
    answered = [p for p in _link_passbacks(passbacks, resource_link_id, line_item_id) if p.status_code is not None]
    last = max(answered, key=lambda p: p.timestamp) if answered else None
    if last is not None and score_refusal_kind(vendor, last.status_code, last.response) == ErrorKind.item_inactive:
        return last
    return None


def _item_not_active(rec: PlatformRecords, course: CourseRecords, snap: CourseSnapshot,
                     rows: list[ExpectedGrade], link_items: dict[str, LinkItem], blocked: set[str]) -> list[Finding]:
    by_link: dict[str, list[ExpectedGrade]] = defaultdict(list)
    for g in rows:
        by_link[g.resource_link_id].append(g)
    scored_items = {li_id for li_id, results in snap.results.items()
                    if any(r.result_score is not None for r in results)}
    out = []
    for link in course.links:
        if not link.graded or link.resource_link_id in blocked:
            continue
        item = link_items[link.resource_link_id].item
        if item is None:
            continue
        evidence: dict | None = None
        last = inactive_refusal(rec.vendor, course.passbacks, link.resource_link_id, item.id)
        if last is not None:
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


def _outside(t: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is not None and t < start) or (end is not None and t > end)


def classify_gap(rec: PlatformRecords, course: CourseRecords, g: ExpectedGrade, member: Member | None,
                 item: LineItem | None, passbacks: list[Passback]) -> tuple[str, dict]:
    """The one learner-level category of a gap, first match in design.md order, with its evidence."""
    c = course.course
    comp = g.completion
    # not_learner: absent from the roster, not a Learner, or not Active — or the gradebook itself
    # refused the learner (Moodle's NRPS lists a non-editing teacher as Learner, §10)
    if member is None:
        return "not_learner", {"roster": "absent"}
    if not member.is_learner:
        return "not_learner", {"roster": "present", "roles": list(member.roles)}
    if not member.is_active:
        return "not_learner", {"roster": "present", "status": member.status}
    refused = _latest_answered(passbacks)
    if refused is not None and score_refusal_kind(rec.vendor, refused.status_code, refused.response) == ErrorKind.not_learner:
        return "not_learner", {"roster": "present", "roles": list(member.roles),
                               "gradebook_refused_at": refused.timestamp.isoformat(),
                               "status": refused.status_code, "response": refused.response[:300]}
    # duplicate_account: the linked account has no completion; a same-email account has it
    linked = rec.account_by_lms_user.get(g.lms_user_id)
    if linked is not None and comp.account_id != linked:
        return "duplicate_account", {"linked_account": linked, "completed_in_account": comp.account_id,
                                     "email": rec.account_email.get(linked) or member.email}
    # launched_outside_course: no launch context, or another course's
    if not comp.context_id or comp.platform != c.platform or comp.context_id != c.context_id:
        where = f"{comp.platform}/{comp.context_id}" if comp.context_id else "no launch context (manual login)"
        evidence = {"completion_context": where}
        if linked is None:
            evidence["found_by_roster_email"] = member.email
        return "launched_outside_course", evidence
    # outside_course_dates: course window, or the line item's window when given
    if _outside(comp.completed_at, c.starts_at, c.ends_at):
        return "outside_course_dates", {"completed_at": comp.completed_at.isoformat(),
                                        "starts_at": c.starts_at.isoformat() if c.starts_at else None,
                                        "ends_at": c.ends_at.isoformat() if c.ends_at else None}
    if item is not None and _outside(comp.completed_at, item.start_date_time, item.end_date_time):
        return "outside_course_dates", {"completed_at": comp.completed_at.isoformat(),
                                        "line_item_start": item.start_date_time.isoformat() if item.start_date_time else None,
                                        "line_item_end": item.end_date_time.isoformat() if item.end_date_time else None}
    # manual_grade_conflict: a value the tool is not known to have sent, or a person's later edit
    conflict = manual_edit_evidence(rec.vendor, g, passbacks)
    if conflict is not None:
        return "manual_grade_conflict", conflict
    if g.lms_norm is not None:
        sent = _last_accepted(passbacks)
        return "score_mismatch", {"tool_normalised": round(g.tool_norm, 6), "lms_normalised": round(g.lms_norm, 6),
                                  "lms_value_sent_by_tool_at": sent.timestamp.isoformat() if sent else None}
    answered = _latest_answered(passbacks)
    return "missing_in_lms", {"passbacks": len(passbacks),
                              "last_status": answered.status_code if answered else None}


def _latest_answered(passbacks: list[Passback]) -> Passback | None:
    answered = [p for p in passbacks if p.status_code is not None]
    return answered[-1] if answered else None


def _last_accepted(passbacks: list[Passback]) -> Passback | None:
    accepted = [p for p in passbacks if p.accepted and p.normalised is not None]
    return accepted[-1] if accepted else None


def _own_collision(vendor: str, refused: Passback, passbacks: list[Passback]) -> Passback | None:
    """Another send of the tool's own that the platform may have stored at or after the refused
    timestamp, at the platform's timestamp resolution (Moodle: whole seconds, `>=`, §4.3/§10): the
    stale refusal is then the tool colliding with itself (a 503 that landed, then its retry with the
    same timestamp — the seed's story), not a person's edit."""
    at = timestamp_at_resolution(vendor, refused.timestamp)
    for p in passbacks:
        if p is refused:
            continue
        may_have_landed = p.status_code is None or p.accepted or p.status_code >= 500
        if may_have_landed and timestamp_at_resolution(vendor, p.timestamp) >= at:
            return p
    return None


def manual_edit_evidence(vendor: str, g: ExpectedGrade, passbacks: list[Passback]) -> dict | None:
    """Why the LMS value of a gap may be a person's (design.md manual_grade_conflict), or None when
    there is positive evidence it is the tool's own earlier score (→ score_mismatch) or no value.
    Only an LMS value equal to the tool's latest accepted send is the tool's: any other value may
    have been typed by a person, and is never resent without approval."""
    latest = _latest_answered(passbacks)
    if latest is not None and score_refusal_kind(vendor, latest.status_code, latest.response) == ErrorKind.stale_timestamp:
        own = _own_collision(vendor, latest, passbacks)
        if own is None:
            return {"why": "a resend was refused as older than a later grade in the LMS",
                    "refused_as_stale_at": latest.timestamp.isoformat(), "status": latest.status_code,
                    "response": latest.response[:300]}
    r = g.result
    if r is None or r.result_score is None:
        return None
    lms = g.lms_norm
    evidence: dict = {"lms_normalised": round(lms, 6)}
    tried = [p for p in passbacks if (p.resync_outcome or "").startswith("failed:accepted_not_shown")]
    if tried:
        evidence["supersede_tried"] = {
            "at": tried[-1].timestamp.isoformat(), "sent": f"{tried[-1].score_given:g}/{tried[-1].score_maximum:g}",
            "outcome": "the platform accepted the score but kept its own value"}
    if r.scoring_user_id:
        return {**evidence, "why": "graded by another scorer", "scoring_user_id": r.scoring_user_id}
    last_ok = _last_accepted(passbacks)
    if last_ok is None:
        why = ("the tool has no passback log for this cell" if not passbacks
               else "the tool has no accepted send on record for this cell")
        return {**evidence, "why": f"the LMS value was not sent by the tool: {why}"}
    evidence.update(last_sent=f"{last_ok.score_given:g}/{last_ok.score_maximum:g}",
                    last_sent_at=last_ok.timestamp.isoformat())
    if r.timestamp is not None and math.floor(r.timestamp.timestamp()) > math.floor(last_ok.timestamp.timestamp()):
        return {**evidence, "why": "the LMS grade is later than the tool's last accepted send",
                "result_timestamp": r.timestamp.isoformat()}
    if abs(last_ok.normalised - lms) > TOLERANCE:
        return {**evidence, "why": "the LMS shows a value the tool's last accepted send did not carry"}
    return None
