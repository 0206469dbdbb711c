"""What to do about each category, in the troubleshooting article's words (seed-grade-sync-troubleshooting.txt)."""

ACTIONS: dict[str, str] = {
    "grades_not_accepted": "The tool is not configured to accept grades in the LMS: check the tool's configuration "
                           "(AGS score scope) against the install documentation for this LMS.",
    "course_unreachable": "Check that the tool is still installed (deployed) in this course — on Canvas, the "
                          "deployment scope; if the course has concluded, reopen it or stop syncing it.",
    "link_not_graded": "Rebuild the link with 'Graded' set in the tool's link-creation dialogue.",
    "item_not_active": "Set the assignment active (Canvas: Published; Blackboard: Available), then resync.",
    "not_learner": "Give the user the Student/Learner role (an active enrolment) in the LMS course, "
                   "or leave it if they are not a student.",
    "duplicate_account": "Merge the duplicate accounts (support can merge them to keep the progress); "
                         "ask the student to start from the LTI link in this course.",
    "launched_outside_course": "Ask the student to start from the LTI link in this course "
                               "(not the manual login page or another course).",
    "outside_course_dates": "The work was completed outside the course's start/end dates: "
                            "extend the dates in the LMS or enter the grade manually.",
    "manual_grade_conflict": "Instructor entered a grade; approve a supersede resync or leave it.",
    "score_mismatch": "The LMS shows a different tool score: resync the tool's score (queued).",
    "missing_in_lms": "No grade in the LMS although everything is in place: resync it (queued).",
}
