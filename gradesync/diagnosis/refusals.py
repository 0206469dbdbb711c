"""What a logged platform refusal means, decided by the client's per-vendor error table (one place)."""
from __future__ import annotations

from lti_client.types import ErrorKind
from lti_client.vendors import classify


def score_refusal_kind(vendor: str, status_code: int, response: str) -> ErrorKind | None:
    """The meaning of a non-2xx score POST from the passback log; None for a success."""
    if 200 <= status_code < 300:
        return None
    return classify(vendor, status_code, response or "", "scores")
