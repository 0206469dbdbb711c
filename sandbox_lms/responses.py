"""Response helpers: JSON with LTI media types, plain text, empty bodies."""
from __future__ import annotations

import json
from typing import Any

import orjson

from starlette.responses import Response

LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEM_CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"
RESULT_CONTAINER = "application/vnd.ims.lis.v2.resultcontainer+json"
SCORE = "application/vnd.ims.lis.v1.score+json"
MEMBERSHIP_CONTAINER = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


def json_response(body: Any, status: int = 200, media_type: str = "application/json",
                  headers: dict[str, str] | None = None) -> Response:
    """A JSON response with the given media type, compact, UTF-8: orjson (a page's encoding was the emulator's
    second cost per request, issue 13), or json for what orjson refuses (integers beyond 64 bits, …)."""
    try:
        data = orjson.dumps(body)
    except TypeError:
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(data, status_code=status, media_type=media_type, headers=headers)


def text_response(text: str, status: int, headers: dict[str, str] | None = None) -> Response:
    """A text/plain response."""
    return Response(text, status_code=status, media_type="text/plain", headers=headers)


def empty_response(status: int, headers: dict[str, str] | None = None) -> Response:
    """A response with no body."""
    return Response(b"", status_code=status, headers=headers)


def media_type_of(header: str | None) -> str:
    """The bare media type of a Content-Type/Accept value (parameters dropped, lower-cased)."""
    return (header or "").split(";", 1)[0].strip().lower()


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    """The dict without None values (platforms omit unset fields)."""
    return {k: v for k, v in d.items() if v is not None}
