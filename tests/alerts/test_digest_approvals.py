"""The digest after approvals: it says who approved supersedes of manual grades and whether they landed."""
from __future__ import annotations

from gradesync.alerts.digest import build_digest_view
from gradesync.alerts.render import digest_message, digest_text

from .factories import learner, summary


def test_digest_reports_approved_supersedes_per_approver():
    f = learner("manual_grade_conflict", "canvas-main", "C1", "u1")
    s = summary(3, [f])
    s.approvals = [("ana@example.edu", "canvas-main", "verified"), ("ana@example.edu", "canvas-main", "approved"),
                   ("bo@example.edu", "moodle-main", "verified")]
    view = build_digest_view(s, s.findings, [], [], report=None)
    assert view.approvals == ("ana@example.edu: 2 approved (1 verified in the LMS)",
                              "bo@example.edu: 1 approved (1 verified in the LMS)")
    text = digest_text(view)
    assert "superseded on approval" in text and "ana@example.edu: 2 approved" in text
    blocks = digest_message(view).blocks
    assert any("ana@example.edu" in (b.to_dict().get("text") or {}).get("text", "") for b in blocks)


def test_digest_without_approvals_has_no_approval_section():
    s = summary(4, [learner("missing_in_lms", "canvas-main", "C1", "u1")])
    view = build_digest_view(s, s.findings, [], [], report=None)
    assert view.approvals == () and "approval" not in digest_text(view)
