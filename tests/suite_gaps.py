"""The gaps the completion_sync suite reports (expectations/completion_sync.json: an LMS score present and
within 0.005 of the tool's, both normalised), stated here on their own so tests of the diagnosis check it
against the rule, not against itself. The pipeline tests run the real Great Expectations suite."""
from __future__ import annotations

from gradesync.diagnosis.expected import expected_grades


def suite_gaps(rec, course, snap) -> set[tuple[str, str]]:
    """(line_item_id, lms_user_id) of the course's expected grades the suite would report."""
    out = set()
    for g in expected_grades(rec, course, snap):
        r = g.result
        lms = None if r is None or r.result_score is None else r.result_score / (r.result_maximum or 1.0)
        if lms is None or abs(lms - g.completion.score_given / g.completion.score_maximum) > 0.005:
            out.add((g.line_item_id, g.lms_user_id))
    return out
