"""The score timestamp of a resend: fresh, strictly increasing per (line item, learner), and late
enough to beat what the platform has stored — never the stale completion time.

AGS §4.1: "MUST always be strictly increasing"; "MUST NOT send multiple score updates … with the same
timestamp"; the platform must not update a result whose stored time is later (lti-platform-behavior.md §4.1).
"""
from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

from lti_client.registration import Vendor
from lti_client.vendors import profile_for

STEP = timedelta(milliseconds=1)
SECOND = timedelta(seconds=1)
# A stored time at most this far ahead of our clock is a same-second collision (our own last send,
# the tool's passback), which we step over; further ahead it is someone's later edit, which only an
# approved supersede may beat (otherwise the platform's stale refusal reclassifies the task).
COLLISION_WINDOW = timedelta(seconds=2)


def _whole_seconds(vendor: Vendor | str) -> bool:
    """Moodle compares `timemodified >= strtotime(timestamp)` at whole seconds (§4.3): a score in the
    same second as the stored one is refused with 409, so a resend must land in a later second."""
    return profile_for(vendor).whole_second_timestamps

# Canvas 400 "Provided timestamp of X before last updated timestamp of Y" (§4.2 check 6): Y is the
# stored time, printed with milliseconds — what an approved supersede must beat.
_CANVAS_STORED = re.compile(r"before last updated timestamp of\s+([0-9][0-9T:.\-+Z ]+[0-9Z])", re.IGNORECASE)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _next_whole_second(dt: datetime) -> datetime:
    """The first instant of the second after the one `dt` falls in."""
    return datetime.fromtimestamp(math.floor(dt.timestamp()) + 1, timezone.utc)


def stored_time_from_refusal(response: str | None) -> datetime | None:
    """The platform's stored time quoted by a stale refusal (Canvas), or None."""
    match = _CANVAS_STORED.search(response or "")
    if not match:
        return None
    text = match.group(1).strip().replace(" ", "T", 1).replace("Z", "+00:00")
    try:
        return _aware(datetime.fromisoformat(text))
    except ValueError:
        return None


def same_instant(a: datetime, b: datetime, vendor: Vendor | str) -> bool:
    """Whether the platform stores `a` and `b` as the same time: the same whole second on Moodle
    (strtotime drops the fraction, §4.3, §10), the same millisecond elsewhere (we send ms, §4.1)."""
    if _whole_seconds(vendor):
        return math.floor(_aware(a).timestamp()) == math.floor(_aware(b).timestamp())
    return abs(_aware(a) - _aware(b)) < STEP


def own_send(stored_at: datetime | None, sent: tuple[datetime, ...] | list[datetime], vendor: Vendor | str) -> bool:
    """The platform's stored time is one of our own sends (at its resolution): a stale refusal against
    it is our own earlier send, not a person's edit (issue 10 §1)."""
    return stored_at is not None and any(same_instant(stored_at, t, vendor) for t in sent)


def fresh_timestamp(now: datetime, vendor: Vendor | str, *, last_sent: datetime | None = None,
                    stored_at: datetime | None = None, supersede: bool = False) -> datetime:
    """max(now, last_sent + 1 ms, the platform's stored time beaten): the timestamp of the next send.

    Always strictly later than `last_sent` at the platform's resolution (the next whole second on
    Moodle), so two of our own sends can never collide there.

    `stored_at` is the platform's stored time for the cell when known (a result's `timestamp` on
    Moodle, the time quoted in a Canvas stale refusal). It is beaten when it is a near collision, or
    always when `supersede` (an approved overwrite of a manual grade)."""
    whole_seconds = _whole_seconds(vendor)
    ts = _aware(now)
    if last_sent is not None:
        last = _aware(last_sent)
        ts = max(ts, _next_whole_second(last) if whole_seconds else last + STEP)
    if stored_at is not None:
        stored = _aware(stored_at)
        if supersede or stored <= _aware(now) + COLLISION_WINDOW:
            ts = max(ts, _next_whole_second(stored) if whole_seconds else stored + STEP)
    # Sent with millisecond precision (lti_client.parse.iso_ms): never let truncation undo the step.
    return ts.replace(microsecond=(ts.microsecond // 1000) * 1000) + (STEP if ts.microsecond % 1000 else timedelta(0))
