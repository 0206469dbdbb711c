"""The client's exceptions and the parsing of LMS error bodies into (error type, message).

Every exception carries an `LtiErrorInfo` (data the pipeline stores); nothing here ever holds a token:
messages are scrubbed by the client before an error is built, and URLs are redacted.
"""
from __future__ import annotations

import json
from typing import Any

from lti_client.types import ErrorKind, LtiErrorInfo
from lti_client.vendors.base import blank_body

MAX_MESSAGE_CHARS = 500


class LtiError(Exception):
    """An LMS call failed; `info` says how (kind from the vendor's error table, status, message, URL)."""

    def __init__(self, info: LtiErrorInfo) -> None:
        # `args == (info,)` keeps the exception picklable (Prefect moves exceptions between processes).
        super().__init__(info)
        self.info = info

    @property
    def kind(self) -> ErrorKind:
        return self.info.kind

    @property
    def status(self) -> int | None:
        return self.info.status

    @property
    def message(self) -> str:
        return self.info.message

    @property
    def url(self) -> str | None:
        return self.info.url

    @property
    def error_type(self) -> str | None:
        return self.info.error_type

    def __str__(self) -> str:
        status = f" HTTP {self.info.status}" if self.info.status is not None else ""
        etype = f" [{self.info.error_type}]" if self.info.error_type else ""
        where = f" ({self.info.url})" if self.info.url else ""
        return f"{self.info.kind.value}{status}{etype}: {self.info.message}{where}"


class PagingLoopError(LtiError):
    """A paged listing offered a next URL it had already offered (or never ended): we stop, never spin."""


class UnsafeUrlError(LtiError):
    """A URL failed the registration's host allow-list; nothing was sent to it."""


def _truncate(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def _from_errors_list(items: list[Any]) -> tuple[str | None, str]:
    # Canvas `errors: [{"field": "grade", "message": "...", "error_code": null}]` (§4.2 unpublished).
    parts: list[str] = []
    etype: str | None = None
    for item in items:
        if isinstance(item, dict):
            field, msg = item.get("field"), item.get("message")
            etype = etype or item.get("type") or item.get("error_code")
            parts.append(f"{field}: {msg}" if field else str(msg if msg is not None else item))
        else:
            parts.append(str(item))
    return (str(etype) if etype else None), "; ".join(parts)


def parse_error_body(text: str, status: int | None = None, reason: str = "") -> tuple[str | None, str]:
    """(platform error type, message) from an error body: OAuth `{error, error_description}`, Canvas
    `errors` as an object or an array, other JSON, or plain text; never empty. A body without text
    (empty, `[]`, `{}`) gives way to the non-standard reason phrase `reason` when there is one: Moodle
    5.1 sends its score refusals as `400 Incorrect score received{…}` with body `[]` (§10)."""
    stripped = text.strip()
    if blank_body(stripped):
        if reason.strip():
            return None, _truncate(reason)
        if not stripped:
            return None, f"HTTP {status} with an empty body" if status else "empty body"
        return None, f"HTTP {status} with body {stripped}" if status else f"body {stripped}"
    try:
        body = json.loads(stripped)
    except ValueError:
        return None, _truncate(stripped)
    if isinstance(body, list):
        etype, msg = _from_errors_list(body)
        return etype, _truncate(msg or stripped)
    if not isinstance(body, dict):
        return None, _truncate(stripped)
    if isinstance(body.get("error"), str):          # RFC 6749 §5.2 (§1.5)
        desc = body.get("error_description")
        return body["error"], _truncate(str(desc) if desc else body["error"])
    errors = body.get("errors")
    if isinstance(errors, dict):                     # Canvas object form (§1.4, §4.2)
        etype = errors.get("type")
        return (str(etype) if etype else None), _truncate(str(errors.get("message") or errors))
    if isinstance(errors, list):                     # Canvas array form (§4.2 unpublished)
        etype, msg = _from_errors_list(errors)
        return etype, _truncate(msg or stripped)
    for key in ("message", "detail", "title", "reason"):
        if isinstance(body.get(key), str):
            etype = body.get("type") or body.get("code")
            return (str(etype) if etype else None), _truncate(body[key])
    return None, _truncate(stripped)
