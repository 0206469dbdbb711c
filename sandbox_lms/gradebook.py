"""Gradebook semantics shared by the profiles: rescaling, setting/clearing, stored times, manual grades.

Each profile passes a `ScorePolicy` saying how its platform treats a score; the rules here are the
platform-neutral arithmetic (lti-platform-behavior.md §4). Pure functions over the state records.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

from sandbox_lms.state import LineItemRecord, ResultRecord

FULLY_GRADED = "FullyGraded"
PENDING_MANUAL = "PendingManual"
ACTIVITY_PROGRESS = frozenset({"Initialized", "Started", "InProgress", "Submitted", "Completed"})
GRADING_PROGRESS = frozenset({"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"})


@dataclass(frozen=True)
class IncomingScore:
    """A score POST body, parsed."""
    user_id: str
    score_given: float | None
    score_maximum: float | None
    timestamp: datetime
    activity_progress: str
    grading_progress: str
    comment: str | None = None
    scoring_user_id: str | None = None
    preserve_score: bool = False               # Canvas submission extension
    prioritize_non_tool_grade: bool = False    # Canvas submission extension


@dataclass(frozen=True)
class ScorePolicy:
    """How one platform stores a score."""
    sets_score: frozenset[str] = frozenset({FULLY_GRADED})  # gradingProgress values whose scoreGiven counts
    default_maximum: float | None = None       # Moodle: scoreMaximum defaults to 1 (§4.3)
    clear_removes_row: bool = False            # Moodle: clearing nulls timemodified → row not listed (§4.3)
    honours_canvas_flags: bool = False         # Canvas preserve_score / prioritize_non_tool_grade (§4.2)
    cap_at_maximum: bool = False               # D2L: capped unless "Can Exceed" (§2.5, §4.5)
    whole_seconds: bool = False                # Moodle: timemodified = strtotime(timestamp) (§4.3)
    override_sticks: bool = False              # Moodle: a teacher override keeps the final grade (§4.3, inferred)


def parse_timestamp(value: object, *, require_zone: bool) -> datetime | None:
    """ISO 8601 → aware UTC datetime; None if unparsable (or zone-less when `require_zone`)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        ts = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if ts.tzinfo is None:
        if require_zone:
            return None
        ts = ts.replace(tzinfo=timezone.utc)   # lenient platforms read a zone-less time as UTC
    return ts.astimezone(timezone.utc)


def whole_seconds(ts: datetime) -> int:
    """Unix time truncated to whole seconds (PHP strtotime drops the fraction)."""
    return math.floor(ts.timestamp())


def rescale(score_given: float, sent_maximum: float | None, item_maximum: float) -> float:
    """scoreGiven × item max / sent max; unchanged when the sent max is missing or 0 (Canvas, Moodle §4.2–4.3)."""
    if not sent_maximum or sent_maximum != sent_maximum:   # 0, None or NaN: no rescale
        return score_given
    if sent_maximum == item_maximum:
        return score_given
    return score_given * item_maximum / sent_maximum


def apply_score(item: LineItemRecord, score: IncomingScore, policy: ScorePolicy) -> ResultRecord | None:
    """Store an accepted score in the item's gradebook cell; returns the cell (None if the row was removed)."""
    existing = item.results.get(score.user_id)
    sets = score.grading_progress in policy.sets_score and score.score_given is not None
    stored_at = score.timestamp
    if policy.whole_seconds:
        stored_at = datetime.fromtimestamp(whole_seconds(score.timestamp), timezone.utc)
    if policy.override_sticks and existing is not None and not existing.by_tool:
        # The raw grade is stored (200) but the final grade, feedback and scorer stay the override's.
        existing.stored_at = stored_at
        existing.tool_posted = True
        return existing
    if sets and policy.honours_canvas_flags and score.prioritize_non_tool_grade \
            and existing is not None and existing.result_score is not None:
        return _canvas_keep_submission(existing, score, stored_at)
    if sets:
        value = rescale(float(score.score_given), score.score_maximum or policy.default_maximum,
                        item.score_maximum)
        if policy.cap_at_maximum:
            value = min(value, item.score_maximum)
    else:
        # "Reset": not FullyGraded or no scoreGiven clears the cell (spec §4.1; Canvas/Moodle §4.2–4.3)
        if policy.honours_canvas_flags and score.preserve_score and existing is not None:
            value = existing.result_score
        elif policy.clear_removes_row:
            item.results.pop(score.user_id, None)
            return None
        else:
            value = None
    record = ResultRecord(
        user_id=score.user_id, result_score=value, result_maximum=item.score_maximum,
        stored_at=stored_at, comment=score.comment, scoring_user_id=score.scoring_user_id,
        by_tool=True, tool_posted=True,
        lti_score=score.score_given if policy.honours_canvas_flags else None,
        lti_maximum=score.score_maximum if policy.honours_canvas_flags and sets else None,
    )
    item.results[score.user_id] = record
    return record


def _canvas_keep_submission(existing: ResultRecord, score: IncomingScore, stored_at: datetime) -> ResultRecord:
    """Canvas `prioritize_non_tool_grade` with a submission score present (`submission_has_score?`, any
    grader, §4.2): the submission — its score and grader — stays; the Lti::Result row is still written
    with the raw score, the sent maximum and the tool's timestamp."""
    existing.lti_score = score.score_given
    existing.lti_maximum = score.score_maximum
    existing.stored_at = stored_at
    existing.comment = score.comment
    existing.tool_posted = True
    return existing


def manual_grade(item: LineItemRecord, user_id: str, score: float | None, *, now: datetime,
                 scorer: str | None = "instructor", comment: str | None = None) -> ResultRecord:
    """An instructor edits the gradebook cell: the score is on the item's scale; the stored time moves to now.
    Canvas copies the new score into an existing Lti::Result row, keeping its maximum
    (`Lti::Result.update_score_for_submission`, result.rb@02bf0940, §3.2); with no row there is none to copy to."""
    existing = item.results.get(user_id)
    record = ResultRecord(
        user_id=user_id, result_score=score, result_maximum=item.score_maximum, stored_at=now,
        comment=comment if comment is not None else (existing.comment if existing else None),
        scoring_user_id=scorer, by_tool=False,
        tool_posted=existing.tool_posted if existing else False,
        lti_score=score if existing is not None and existing.tool_posted else None,
        lti_maximum=(existing.lti_maximum or item.score_maximum) if existing is not None and existing.tool_posted
        else None,
    )
    item.results[user_id] = record
    return record


def hidden_teacher_grade(item: LineItemRecord, user_id: str, score: float, *, now: datetime,
                         scorer: str | None = "instructor") -> ResultRecord:
    """Canvas: a teacher grades a learner the tool never scored (score on the item's scale). There is no
    Lti::Result row, so AGS results do not list it (§3.2), and no stale check applies to it; a tool
    score POST with `prioritize_non_tool_grade` keeps it (§4.2). Refuses a cell the tool already scored."""
    existing = item.results.get(user_id)
    if existing is not None and existing.tool_posted:
        raise ValueError(f"{user_id} already has a tool-posted result on item {item.id}: a teacher grade "
                         "there is visible (use a manual grade)")
    record = ResultRecord(user_id=user_id, result_score=score, result_maximum=item.score_maximum, stored_at=now,
                          scoring_user_id=scorer, by_tool=False, tool_posted=False)
    item.results[user_id] = record
    return record
