"""Evidence in plain words: what the diagnosis records, as a support person reads it."""
from __future__ import annotations

from datetime import datetime, timezone

from gradesync.findings import CATEGORIES
from gradesync.report.evidence import ScoreContext, evidence_in_words

TODAY = datetime(2026, 3, 20, tzinfo=timezone.utc)


def words(category: str, evidence: dict, **kw) -> str:
    return evidence_in_words(category, evidence, ScoreContext(today=TODAY, **kw)).words


def test_roster_evidence_reads_as_words():
    assert words("not_learner", {"roster": "absent"}) == "Not on the roster"
    ta = ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
          "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"]
    assert words("not_learner", {"roster": "present", "roles": ta}) == "A TA, not a learner"
    assert "Enrolment not active (status Inactive)" == words("not_learner", {"roster": "present", "status": "Inactive"})


def test_refusal_and_manual_grade_evidence_name_dates_and_scores():
    refused = evidence_in_words("item_not_active", {"refused_at": "2026-03-04T10:00:00+00:00", "status": 422,
                                                    "response": '{"errors":[{"message":"assignment unpublished"}]}'},
                                ScoreContext(today=TODAY))
    assert refused.words == "Refused: assignment unpublished (HTTP 422, 4 Mar)"
    assert ("response", '{"errors":[{"message":"assignment unpublished"}]}') in refused.details
    manual = words("manual_grade_conflict", {"last_sent": "70/100", "last_sent_at": "2026-03-01T09:00:00+00:00",
                                             "lms_normalised": 0.95},
                   lms_score=95.0, lms_maximum=100.0, lms_since=datetime(2026, 3, 4, tzinfo=timezone.utc))
    assert manual == "LMS shows 95/100 since 4 Mar; the tool last sent 70/100 on 1 Mar"


def test_every_category_has_words_and_unknown_keys_are_still_shown():
    samples = {"grades_not_accepted": {"token": "invalid_scope"}, "course_unreachable": {"status": 404, "message": "gone", "url": "https://x/y"},
               "link_not_graded": {"graded_in_tool": True, "line_items_in_course": 3},
               "item_not_active": {"expected": 4, "present": 0, "other_items_with_results": 2},
               "not_learner": {"roster": "absent"}, "duplicate_account": {"email": "a@b.edu", "linked_account": "A1", "completed_in_account": "A2"},
               "launched_outside_course": {"completion_context": "no launch context (manual login)"},
               "outside_course_dates": {"completed_at": "2026-02-01T00:00:00+00:00", "starts_at": None, "ends_at": "2026-01-15T00:00:00+00:00"},
               "manual_grade_conflict": {"scoring_user_id": "teacher-9"}, "score_mismatch": {"tool_normalised": 0.8, "lms_normalised": 0.6},
               "missing_in_lms": {"passbacks": 0, "last_status": None}}
    assert set(samples) == set(CATEGORIES)
    for category, evidence in samples.items():
        e = evidence_in_words(category, {**evidence, "added_by_a_later_version": 7}, ScoreContext(today=TODAY))
        assert "{" not in e.words and "=" not in e.words, (category, e.words)
        assert "added by a later version: 7" in e.words, (category, e.words)
    url = evidence_in_words("course_unreachable", samples["course_unreachable"])
    assert "https://" not in url.words and ("url", "https://x/y") in url.details
    assert "after the course's end on 15 Jan" in words("outside_course_dates", samples["outside_course_dates"])


def test_unknown_category_and_odd_values_never_raise():
    e = evidence_in_words("a_new_category", {"roles": ["x"], "score": 0.123456, "nested": {"a_b": 1}})
    assert "Roles: x" in e.words and "score: 0.1235" in e.words and "nested: a b 1" in e.words
    assert evidence_in_words("not_learner", {"roles": None}).words      # a builder meeting odd data
    assert evidence_in_words("missing_in_lms", {}).words == "No evidence recorded"


def test_the_diagnosis_why_and_newer_keys_read_as_one_sentence():
    since = datetime(2026, 3, 4, tzinfo=timezone.utc)
    no_log = words("manual_grade_conflict", {"lms_normalised": 0.95,
                                             "why": "the LMS value was not sent by the tool: the tool has no passback log for this cell"},
                   lms_score=95.0, lms_maximum=100.0, lms_since=since)
    assert no_log == ("LMS shows 95/100 since 4 Mar; the LMS value was not sent by the tool: the tool has no "
                      "passback log for this cell")
    tried = words("manual_grade_conflict", {"why": "graded by another scorer", "scoring_user_id": "t-1", "lms_normalised": 0.5,
                                            "supersede_tried": {"at": "2026-03-10T00:00:00+00:00", "sent": "8/10",
                                                                "outcome": "kept"}},
                  lms_score=5.0, lms_maximum=10.0)
    assert tried == ("LMS shows 5/10, entered by a person in the LMS; an approved resend of 8/10 on 10 Mar was "
                     "accepted, but the LMS kept its own value (an override or lock in the gradebook)")
    refused = words("not_learner", {"roster": "present", "roles": ["Learner"], "gradebook_refused_at":
                                    "2026-03-02T00:00:00+00:00", "status": 400, "response": "Incorrect score received"})
    assert refused == "The LMS gradebook refused the score: not a gradable student there (HTTP 400, 2 Mar)"
    own = words("score_mismatch", {"tool_normalised": 1.0, "lms_normalised": 0.7,
                                   "lms_value_sent_by_tool_at": "2026-02-01T00:00:00+00:00"},
                tool_score=10.0, tool_maximum=10.0, lms_score=7.0, lms_maximum=10.0)
    assert own == "LMS shows 7/10 (the tool's own score, sent 1 Feb); the tool now has 10/10"
    email = words("launched_outside_course", {"completion_context": "no launch context (manual login)",
                                              "found_by_roster_email": "a@b.edu"})
    assert "found by the roster's email a@b.edu" in email
