"""What a logged platform refusal means, decided by the client's per-vendor error table (one place),
and the platform's score-timestamp resolution."""
from __future__ import annotations

import math
from datetime import datetime

from lti_client.types import ErrorKind
from lti_client.vendors import classify, profile_for


def score_refusal_kind(vendor: str, status_code: int | None, response: str) -> ErrorKind | None:
    """The meaning of a non-2xx score POST from the passback log; None for a success or no answer."""
    if status_code is None or 200 <= status_code < 300:
        return None
    return classify(vendor, status_code, response or "", "scores")


def timestamp_at_resolution(vendor: str, ts: datetime) -> float:
    """A score timestamp as the platform compares it: whole seconds on Moodle, milliseconds elsewhere."""
    if profile_for(vendor).whole_second_timestamps:
        return float(math.floor(ts.timestamp()))
    return math.floor(ts.timestamp() * 1000) / 1000
