"""LMS JSON → typed records (LineItem, Result, Member), and Score → score POST body.

Parsers raise `BodyShapeError` when a body cannot be read as the container it should be; the client
turns that into `LtiError(kind=malformed)`. Optional fields are read leniently (platforms differ);
required ones (ids, userId, user_id) are not.
"""
from __future__ import annotations

import logging
import math
from datetime import datetime, timezone
from typing import Any

from lti_client.types import LineItem, Member, Result, Score

log = logging.getLogger(__name__)

MEMBERSHIP_NS = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
# Context roles the NRPS spec lets a platform send in short form (§5.1); normalised to full URIs.
_SHORT_CONTEXT_ROLES = frozenset({"Learner", "Instructor", "ContentDeveloper", "Mentor",
                                  "Administrator", "Manager", "Member", "Officer"})


class BodyShapeError(ValueError):
    """The body parsed as JSON but is not the expected container or record."""


def _opt_str(value: Any) -> str | None:
    # Moodle sends '' for "no resourceId / tag" (§2.3): treat blank like absent.
    if value is None:
        return None
    text = value if type(value) is str else str(value)
    return text if text and not text.isspace() else None


def _opt_float(value: Any, field: str) -> float | None:
    if value is None or value == "":
        return None
    if type(value) is float or type(value) is int:          # the common case, checked first (issue 13)
        number = float(value)
        if number - number == 0:                            # finite (inf - inf and nan - nan are nan)
            return number
    if isinstance(value, bool):
        raise BodyShapeError(f"{field} is not a number: {value!r}")
    try:
        number = float(value)                       # numeric strings accepted (PHP platforms)
    except (TypeError, ValueError):
        raise BodyShapeError(f"{field} is not a number: {value!r}") from None
    if math.isnan(number) or math.isinf(number):
        raise BodyShapeError(f"{field} is not a finite number: {value!r}")
    return number


def _opt_datetime(value: Any, field: str) -> datetime | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError:
        # A bad optional date must not blind the whole course; it is logged and dropped.
        log.warning("unparsable %s %r ignored", field, value)
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _require_str(obj: dict, key: str, what: str) -> str:
    value = obj.get(key)
    if type(value) is str and value and not value.isspace():   # the common case first
        return value
    if value is None or (isinstance(value, str) and not value.strip()) or isinstance(value, (dict, list)):
        raise BodyShapeError(f"{what} without {key}")
    return str(value)


def parse_line_item(obj: Any) -> LineItem:
    """One AGS line item (spec §2.1 fields; Moodle's legacy `ltiLinkId` as a fallback, §2.3)."""
    if not isinstance(obj, dict):
        raise BodyShapeError("line item is not an object")
    return LineItem(
        id=_require_str(obj, "id", "line item"),
        label=_opt_str(obj.get("label")),
        score_maximum=_opt_float(obj.get("scoreMaximum"), "scoreMaximum"),
        resource_link_id=_opt_str(obj.get("resourceLinkId", obj.get("ltiLinkId"))),
        resource_id=_opt_str(obj.get("resourceId")),
        tag=_opt_str(obj.get("tag")),
        start_date_time=_opt_datetime(obj.get("startDateTime"), "startDateTime"),
        end_date_time=_opt_datetime(obj.get("endDateTime"), "endDateTime"),
    )


def parse_result(obj: Any) -> Result:
    """One AGS result; `resultMaximum` defaults to 1 (spec §3.1); `timestamp` is Moodle-only (§3.3)."""
    if not isinstance(obj, dict):
        raise BodyShapeError("result is not an object")
    get = obj.get
    maximum = _opt_float(get("resultMaximum"), "resultMaximum")
    comment, timestamp = get("comment"), get("timestamp")
    return Result(
        id=_opt_str(get("id")),
        score_of=_opt_str(get("scoreOf")),
        user_id=_require_str(obj, "userId", "result"),
        result_score=_opt_float(get("resultScore"), "resultScore"),
        result_maximum=maximum if maximum is not None and maximum > 0 else 1.0,
        scoring_user_id=_opt_str(get("scoringUserId")),
        comment=comment if type(comment) is str else None,
        timestamp=None if timestamp is None else _opt_datetime(timestamp, "timestamp"),
    )


def _full_role(role: str) -> str:
    return MEMBERSHIP_NS + role if role in _SHORT_CONTEXT_ROLES else role


def parse_member(obj: Any) -> Member:
    """One NRPS member: roles as full URIs, status defaulting to Active (spec §5.1)."""
    if not isinstance(obj, dict):
        raise BodyShapeError("member is not an object")
    roles = obj.get("roles") or []
    if not isinstance(roles, list):
        raise BodyShapeError("member roles is not an array")
    status = _opt_str(obj.get("status")) or "Active"
    return Member(
        user_id=_require_str(obj, "user_id", "member"),
        roles=tuple(_full_role(str(r)) for r in roles),
        status=status,
        name=_opt_str(obj.get("name")),
        email=_opt_str(obj.get("email")),
        given_name=_opt_str(obj.get("given_name")),
        family_name=_opt_str(obj.get("family_name")),
    )


def container_items(body: Any, members_key: str | None) -> list[Any]:
    """The records of one page: a JSON array (AGS containers) or `body[members_key]` (NRPS)."""
    if members_key is None:
        if isinstance(body, list):
            return body
        raise BodyShapeError("container is not a JSON array")
    if isinstance(body, dict) and isinstance(body.get(members_key), list):
        return body[members_key]
    raise BodyShapeError(f"container has no '{members_key}' array")


def iso_ms(dt: datetime) -> str:
    """ISO 8601 with milliseconds and a zone (AGS §4.1 "sub-second precision"). A naive datetime
    is taken as UTC: our tables store UTC, and SQLite hands datetimes back without tzinfo."""
    aware = dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    return aware.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _number(value: float) -> int | float:
    # 0 stays 0 (never dropped as falsy, §7 #10); integral floats are sent as integers.
    return int(value) if float(value).is_integer() else float(value)


def score_body(score: Score, extensions: dict | None = None) -> dict:
    """The score POST body (AGS §4.1): every required field always present, `scoreGiven` 0 kept."""
    body: dict[str, Any] = {
        "userId": score.user_id,
        "scoreGiven": _number(score.score_given),
        "scoreMaximum": _number(score.score_maximum),
        "activityProgress": score.activity_progress,
        "gradingProgress": score.grading_progress,
        "timestamp": iso_ms(score.timestamp),
    }
    if score.comment is not None:
        body["comment"] = score.comment
    if score.submitted_at is not None:
        body["submission"] = {"submittedAt": iso_ms(score.submitted_at)}
    if extensions:
        body.update(extensions)
    return body
