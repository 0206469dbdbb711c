"""What each finding category means (design.md's table, verbatim) and the colour the report draws it in."""
from __future__ import annotations

from gradesync.findings import CATEGORIES

# design.md "The causes (finding categories)": the meaning column, in the seed's words.
MEANINGS: dict[str, str] = {
    "grades_not_accepted": "tool not configured to accept grades",
    "course_unreachable": "deployment scope / tool removed / course concluded",
    "link_not_graded": "link not set to Graded at creation",
    "item_not_active": "assignment unpublished / unavailable",
    "not_learner": "user lacks the Student/Learner role",
    "duplicate_account": "work done in an account not tied to the LMS",
    "launched_outside_course": "manual login or a different course",
    "outside_course_dates": "completed outside the course start/end dates",
    "manual_grade_conflict": "a manual grade blocks resync (timestamp rule)",
    "score_mismatch": "LMS shows a different tool score",
    "missing_in_lms": "no result although all preconditions hold",
}

# Tableau-10 hues plus one navy: eleven colours that stay distinct on white and in greyscale print.
COLOURS: dict[str, str] = {
    "grades_not_accepted": "#e15759",
    "course_unreachable": "#9c755f",
    "link_not_graded": "#f28e2b",
    "item_not_active": "#edc948",
    "not_learner": "#b07aa1",
    "duplicate_account": "#ff9da7",
    "launched_outside_course": "#76b7b2",
    "outside_course_dates": "#bab0ac",
    "manual_grade_conflict": "#1f3b5c",
    "score_mismatch": "#4e79a7",
    "missing_in_lms": "#59a14f",
}
UNKNOWN_COLOUR = "#555555"

# Column heads of the by-course table: eleven full names do not fit a 1280 px page side by side.
SHORT: dict[str, str] = {
    "grades_not_accepted": "not accepted", "course_unreachable": "unreachable", "link_not_graded": "not graded",
    "item_not_active": "inactive", "not_learner": "not learner", "duplicate_account": "duplicate",
    "launched_outside_course": "outside course", "outside_course_dates": "outside dates",
    "manual_grade_conflict": "manual grade", "score_mismatch": "mismatch", "missing_in_lms": "missing",
}


def ordered_categories(present: set[str] | None = None) -> list[str]:
    """Design order, then any category this code does not know (sorted) so nothing is silently dropped."""
    extra = sorted(c for c in (present or set()) if c not in CATEGORIES)
    return [*CATEGORIES, *extra]


def colour_of(category: str) -> str:
    return COLOURS.get(category, UNKNOWN_COLOUR)


def meaning_of(category: str) -> str:
    return MEANINGS.get(category, "category unknown to this version of the report")


def short_of(category: str) -> str:
    return SHORT.get(category, category)
