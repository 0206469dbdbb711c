"""Digest content and Slack limits, from RunSummary to the JSON a webhook receives."""
from __future__ import annotations

import json

from slack_sdk.models.blocks import Block

from gradesync.alerts.digest import build_digest_view, report_link
from gradesync.alerts.plan import CONSOLE_ROUTE, digest_view_for
from gradesync.alerts.render import MAX_BLOCKS, digest_message
from gradesync.alerts.service import render_digest_text
from gradesync.findings import CourseStatus

from .factories import course, learner, summary


def _all_text(payload: dict) -> str:
    return json.dumps(payload["blocks"], ensure_ascii=False)


def _run():
    open_a = [learner("missing_in_lms", "canvas", "c1", f"u{i}") for i in range(4)]
    new_b = [learner("score_mismatch", "canvas", "c2", "u9"), learner("not_learner", "moodle", "m1", "x1")]
    resolved = [learner("missing_in_lms", "canvas", "c1", "gone1"), learner("missing_in_lms", "moodle", "m1", "g2")]
    courses = [CourseStatus("canvas", "c1", "audited", title="Biology <101>"),
               CourseStatus("canvas", "c2", "audited", title="Chem"),
               CourseStatus("moodle", "m1", "audited", title="Maths"),
               CourseStatus("moodle", "m2", "unverified", reason="HTTP 503 from memberships", title="Art")]
    return summary(12, open_a + new_b, new={f.identity for f in new_b}, resolved=resolved, courses=courses)


def test_digest_counts_new_open_resolved_and_fallback_text():
    s = _run()
    payload = digest_message(digest_view_for(s, CONSOLE_ROUTE, report=None)).to_payload()
    assert payload["text"].startswith("gradesync nightly audit run 12: 6 findings (2 new)")
    text = _all_text(payload)
    assert "*6 findings* · *2 new* · 4 still open · 2 resolved since the last run" in text
    assert "• `missing_in_lms` 4" in text and "• `score_mismatch` 1 (1 new)" in text
    assert "• `not_learner` 1 (1 new)" in text
    assert "*Resolved since the last run: 2*" in text
    # the most affected course first, its title escaped for mrkdwn
    assert text.index("Biology &lt;101&gt; (c1)") < text.index("Chem (c2)")
    assert payload["blocks"][0]["type"] == "header"


def test_unverified_courses_are_one_could_not_audit_line():
    s = _run()
    s.courses += [CourseStatus("moodle", f"z{i}", "unverified", reason="timeout") for i in range(30)]
    payload = digest_message(digest_view_for(s, CONSOLE_ROUTE, report=None)).to_payload()
    lines = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section"
             and "Could not audit" in b["text"]["text"]]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith("*Could not audit: 31 courses* (moodle / Art (m2): HTTP 503 from memberships;")
    assert lines[0].endswith("… and 21 more)")
    assert "could not audit 31 courses" in payload["text"]


def test_report_link_uses_base_url_else_local_path():
    assert report_link("/srv/reports/run-12.html", "https://reports.example.edu/gs/") == \
        "https://reports.example.edu/gs/run-12.html"
    assert report_link("reports/run-12.html", None) == "reports/run-12.html"
    s = _run()
    view = build_digest_view(s, s.findings, s.resolved, s.unverified, report="https://r.example/run-12.html")
    assert "<https://r.example/run-12.html|Open the report>" in _all_text(digest_message(view).to_payload())
    assert "report: reports/run-1.html" in render_digest_text(s)


def test_five_thousand_findings_stay_within_slack_limits():
    findings = [learner(["missing_in_lms", "score_mismatch", "not_learner"][i % 3], "canvas", f"course-{i % 400}",
                        f"user-{i}") for i in range(5000)]
    findings += [course("course_unreachable", "moodle", f"m{i}") for i in range(300)]
    courses = [CourseStatus("moodle", f"m{i}", "unverified", reason="HTTP 404 " + "x" * 200) for i in range(300)]
    s = summary(7, findings, new={f.identity for f in findings[:1234]}, courses=courses)
    msg = digest_message(digest_view_for(s, CONSOLE_ROUTE, report="reports/" + "r" * 300 + ".html"))
    payload = msg.to_payload()                  # slack_sdk validates every block's limits here
    assert all(isinstance(b, Block) for b in msg.blocks)
    assert len(payload["blocks"]) <= MAX_BLOCKS
    for b in payload["blocks"]:
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= 3000
        if b["type"] == "header":
            assert len(b["text"]["text"]) <= 150
    assert payload["text"].startswith("gradesync nightly audit run 7: 5300 findings (1234 new)")
    assert "… and 695 more" in _all_text(payload)          # 700 courses with findings, top 5 shown
    assert "… and 290 more" in _all_text(payload)          # could-not-audit names 10 of 300


def test_console_text_matches_digest_numbers():
    text = render_digest_text(_run())
    assert text.splitlines()[0].startswith("gradesync nightly audit run 12: 6 findings (2 new)")
    assert "6 findings: 2 new, 4 still open, 2 resolved since the last run" in text
    assert "Could not audit: 1 course (moodle / Art (m2): HTTP 503 from memberships)" in text
