"""What each platform answered to a score POST, as the tool's passback log recorded it.

The bodies copy the real platforms' (lti-platform-behavior.md §4.2–4.6) so the log the world writes is
the log a tool talking to that platform would hold. Sections (§) refer to that file.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from enum import Enum


class Outcome(str, Enum):
    accepted = "accepted"
    stale = "stale"                  # refused: timestamp older than the stored one
    inactive = "inactive"            # refused: item unpublished / not available
    not_gradable = "not_gradable"    # refused: user not a student / not in the course
    server_error = "server_error"    # 5xx: the platform failed, nothing stored


def _iso_ms(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _canvas_error(type_: str, message: str) -> str:
    return json.dumps({"errors": {"type": type_, "message": message}})


def answer(profile: str, outcome: Outcome, *, result_url: str, item_id: int, user_id: str,
           sent_timestamp: datetime, stored_at: datetime | None = None,
           enrolled: bool = True) -> tuple[int, str]:
    """(status_code, response body) of one score POST with this outcome on this platform."""
    if outcome is Outcome.accepted:
        if profile == "canvas":
            return 200, json.dumps({"resultUrl": result_url})          # Canvas: 200 {resultUrl} (§4.2)
        return 200, ""                                                  # Moodle: 200 empty (§4.3)
    if outcome is Outcome.server_error:
        if profile == "canvas":
            return 500, json.dumps({"errors": [{"message": "An error occurred.",
                                                 "error_code": "internal_server_error"}]})
        return 503, "Service Unavailable"
    if outcome is Outcome.stale:
        stored = stored_at or sent_timestamp
        if profile == "canvas":
            # Canvas: 400 when result.updated_at > timestamp; Y printed with ms (§4.2 check 6, §7 #7).
            return 400, _canvas_error(
                "bad_request", f"Provided timestamp of {_iso_ms(sent_timestamp)} before last updated "
                               f"timestamp of {_iso_ms(stored)}")
        if profile == "moodle":
            # Moodle: 409 when stored timemodified >= incoming, whole seconds (§4.3, §7 #16).
            return 409, f"Refusing score with an earlier timestamp for item {item_id} and user {user_id}"
        raise ValueError(f"{profile}: no documented stale-timestamp refusal (§4.6)")
    if outcome is Outcome.inactive:
        if profile == "canvas":
            # Canvas: 422 with `errors` as an ARRAY for an unpublished assignment (§4.2, §7 #1).
            return 422, json.dumps({"errors": [{
                "field": "grade",
                "message": "cannot be changed at this time: This assignment is still unpublished",
                "error_code": None}]})
        if profile == "blackboard":
            # Blackboard: a column that is not Available refuses grades; status UNCONFIRMED (§4.4).
            return 400, json.dumps({"status": 400, "message": "Grade column is not available for grading"})
        raise ValueError(f"{profile}: no inactive-item refusal (§4.6)")
    if outcome is Outcome.not_gradable:
        if profile == "canvas":
            return 422, _canvas_error("unprocessable_entity",
                                      "User not found in course or is not a student")   # §4.2 check 4
        if profile == "moodle":
            return 400, "Incorrect score received"                                      # §4.3, §7 #15
        if profile == "blackboard":
            return 400, json.dumps({"status": 400, "message": f"User could not be found: {user_id}"})  # §4.4
        if profile == "d2l" and enrolled:
            # D2L: the role lacks "Can be graded in Grades" → 422 (§4.5).
            return 422, json.dumps({"title": "Unprocessable Entity",
                                    "detail": "User in requested score does not have a gradeable role"})
        if profile == "d2l":
            return 403, json.dumps({"title": "Forbidden",
                                    "detail": "User in requested score is not enrolled in the org unit"})  # §4.5
        return 422, json.dumps({"message": "user is not a learner in this context"})
    raise ValueError(outcome)


# Which refusals each platform can produce (others are not planted there).
SUPPORTED: dict[Outcome, frozenset[str]] = {
    Outcome.stale: frozenset({"canvas", "moodle"}),
    Outcome.inactive: frozenset({"canvas", "blackboard"}),
}
