"""What to tell people, in each LMS's own terms: the one table of per-vendor wording for checklists and
actions (alerts, the report). A Moodle course never gets Canvas steps.

Sources: seed-grade-sync-troubleshooting.txt (the steps) and lti-platform-behavior.md (the vendors'
words): Canvas "Published", Blueprints and deployment scope (seed; §7 #1, #5); Moodle gradebook roles
and teacher overrides (§4.3); Blackboard "Available" (seed) and hidden columns (§4.4); D2L "Can be
graded in Grades" and org units (§4.5, §7 #22). Unknown vendors get the seed's generic wording.
"""
from __future__ import annotations

from dataclasses import dataclass

GENERIC_TOOL_CONFIG = ("The tool is configured to accept grades in the LMS: check the tool's configuration "
                       "against the install documentation for this LMS.")


@dataclass(frozen=True)
class VendorTerms:
    lms: str                              # the product's name
    make_active: str                      # item_not_active: what "active" is called there
    unreachable: str                      # course_unreachable: what to check
    learner_role: str                     # not_learner: the gradable role there
    no_grades_steps: tuple[str, ...]      # "no grades syncing", after the tool-configuration step


TERMS: dict[str, VendorTerms] = {
    "canvas": VendorTerms(
        lms="Canvas",
        make_active="Publish the assignment in Canvas, then resync.",
        unreachable=("Check that the tool is still installed in this Canvas course and the deployment scope; "
                     "if the course has concluded, reopen it or stop syncing it."),
        learner_role="Give the user an active Student enrolment in the Canvas course, or leave it if they are not a student.",
        no_grades_steps=(
            "Canvas Blueprints: the graded items must be set to 'Unlocked' in the Blueprint before syncing the course.",
            "Canvas deployment scope: in a Canvas shared between several institutions, check the deployment "
            "scope with your Implementation Manager.",
        )),
    "moodle": VendorTerms(
        lms="Moodle",
        make_active="Make the activity available in Moodle (not locked in the gradebook), then resync.",
        unreachable=("Check that the external tool is still added to this Moodle course and enabled on the site; "
                     "if the course was deleted or reset, stop syncing it."),
        learner_role=("Enrol the user in the Moodle course with a role that is graded (Student by default: "
                      "the site's gradebook roles), or leave it if they are not a student."),
        no_grades_steps=(
            "Moodle gradebook: a grade item that is locked refuses scores, and a teacher override keeps its "
            "value over the tool's score — check the Grader report for locks and overrides.",
        )),
    "blackboard": VendorTerms(
        lms="Blackboard",
        make_active="Make the item Available to students in Blackboard, then resync.",
        unreachable=("Check that the LTI 1.3 tool is still enabled for this Blackboard course; if the course is "
                     "closed or deleted, stop syncing it."),
        learner_role="Enrol the user in the Blackboard course as a Student, or leave it if they are not a student.",
        no_grades_steps=(
            "Blackboard Grade Center: a hidden grade column does not release the tool's grades to students.",
        )),
    "d2l": VendorTerms(
        lms="D2L Brightspace",
        make_active="Make the grade item visible and gradable in Brightspace Grades, then resync.",
        unreachable=("Check that the tool's deployment is still shared with this org unit in Brightspace; if the "
                     "course offering has ended, stop syncing it."),
        learner_role=("Enrol the user in the org unit with a role that has 'Can be graded in Grades', or leave it "
                      "if they are not a student."),
        no_grades_steps=(
            "Brightspace roles: the learners' role must have 'Can be graded in Grades' for scores to be stored.",
        )),
}


def terms_for(vendor: str | None) -> VendorTerms | None:
    """The vendor's wording, or None for an unknown/generic vendor (callers then use the seed's words)."""
    return TERMS.get((vendor or "").lower())


def no_grades_checklist(vendor: str | None) -> tuple[str, ...]:
    """The seed's "no grades syncing at all" checklist, with only this LMS's own steps."""
    t = terms_for(vendor)
    return (GENERIC_TOOL_CONFIG, *(t.no_grades_steps if t else ()))


def action_for(category: str, vendor: str | None, default: str) -> str:
    """A finding's action in the LMS's own terms where it differs per vendor; `default` otherwise."""
    t = terms_for(vendor)
    if t is None:
        return default
    return {"item_not_active": t.make_active, "course_unreachable": t.unreachable,
            "not_learner": t.learner_role}.get(category, default)
