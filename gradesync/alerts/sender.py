"""Deliver one message to one Slack incoming webhook with slack_sdk's WebhookClient and retry handlers
(stack-notes.md A.6: the Prefect Slack blocks drop Block Kit or ignore 429s). Never raises: a failure
comes back as a SendResult with an error that names only the webhook's host."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.http_retry import (BackoffRetryIntervalCalculator, ConnectionErrorRetryHandler,
                                  RateLimitErrorRetryHandler, RetryHandler)
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from gradesync.alerts.routing import redact, webhook_host

_URL = re.compile(r"(https?://[^/\s]+)/\S*")


class _RedactUrls(logging.Filter):
    """Cut every URL in a log record down to scheme://host — a webhook's path is its credential."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _URL.sub(r"\1/…", record.getMessage())
        record.args = None
        return True


# slack_sdk logs the full webhook URL: at DEBUG when its logger's level is NOTSET (it tests
# `logger.level <= DEBUG`) and at INFO on every retry ("Going to retry the same request: POST <url>").
# Its own logger is pinned at WARNING and redacts URLs in whatever it still logs.
_sdk_logger = logging.getLogger("gradesync.alerts.slack_sdk")
_sdk_logger.setLevel(logging.WARNING)
_sdk_logger.addFilter(_RedactUrls())
log = logging.getLogger(__name__)


class _Counted:
    """Mixin: count the retries a handler grants so the alert log can record attempts."""
    counter: list[int]

    def prepare_for_next_attempt(self, **kw: Any) -> None:
        self.counter[0] += 1
        super().prepare_for_next_attempt(**kw)  # type: ignore[misc]


class RateLimitRetry(_Counted, RateLimitErrorRetryHandler):
    """429: sleep Retry-After (slack_sdk does) — unless Slack asks for longer than we may wait tonight."""

    def __init__(self, counter: list[int], max_retry_count: int, max_wait: float):
        super().__init__(max_retry_count=max_retry_count)
        self.counter, self.max_wait = counter, max_wait

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        values = {k.lower(): v for k, v in (response.headers or {}).items()}.get("retry-after") or ["1"]
        try:
            return float(values[0]) <= self.max_wait
        except ValueError:
            return True


class ServerErrorRetry(_Counted, ServerErrorRetryHandler):
    """5xx with exponential backoff (slack_sdk's own handler only covers 500 and 503)."""

    def __init__(self, counter: list[int], max_retry_count: int, backoff: float):
        super().__init__(max_retry_count=max_retry_count,
                         interval_calculator=BackoffRetryIntervalCalculator(backoff_factor=backoff))
        self.counter = counter

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        return response is not None and 500 <= response.status_code <= 599


class ConnectionRetry(_Counted, ConnectionErrorRetryHandler):
    def __init__(self, counter: list[int], max_retry_count: int, backoff: float):
        super().__init__(max_retry_count=max_retry_count,
                         interval_calculator=BackoffRetryIntervalCalculator(backoff_factor=backoff),
                         error_types=[OSError])     # URLError, ConnectionError and timeouts are OSErrors
        self.counter = counter


def _not_a_webhook_answer(resp: Any) -> str | None:
    """What a 2xx answer is when it is not a webhook's (Slack answers "ok" in text/plain): "an HTML page",
    else None. Other short text answers are accepted (Slack-compatible webhooks word them differently)."""
    headers = {k.lower(): (v[0] if isinstance(v, list) else v) for k, v in (resp.headers or {}).items()}
    body = (resp.body or "").lstrip()[:200].lower()
    if "text/html" in str(headers.get("content-type", "")).lower() or body.startswith(("<!doctype", "<html", "<")):
        return "an HTML page"
    return None


@dataclass(frozen=True)
class SendResult:
    ok: bool
    attempts: int
    status_code: int | None = None
    error: str | None = None


@dataclass
class SlackSender:
    """Posts payloads to webhooks; retry budget shared by all causes (slack_sdk counts one attempt state)."""
    max_retries: int = 3
    backoff: float = 0.5              # seconds × 2**attempt (+ jitter) between 5xx / connection retries
    max_retry_after: float = 30.0     # a longer Retry-After is not waited for: recorded as failed
    timeout: int = 10
    sent: list[str] = field(default_factory=list)   # hosts posted to (for diagnostics)

    def send(self, url: str, payload: dict[str, Any]) -> SendResult:
        """POST one payload; retries 429 (Retry-After), 5xx (backoff) and connection errors."""
        counter = [0]
        handlers: list[RetryHandler] = [
            RateLimitRetry(counter, self.max_retries, self.max_retry_after),
            ServerErrorRetry(counter, self.max_retries, self.backoff),
            ConnectionRetry(counter, self.max_retries, self.backoff),
        ]
        client = WebhookClient(url, timeout=self.timeout, retry_handlers=handlers, logger=_sdk_logger)
        host = webhook_host(url)
        try:
            resp = client.send_dict(payload)
        except Exception as e:  # noqa: BLE001 — sending must never fail the pipeline
            err = redact(f"{type(e).__name__}: {e}", url)
            log.warning("Slack webhook %s failed after %d attempt(s): %s", host, counter[0] + 1, err)
            return SendResult(False, counter[0] + 1, None, err)
        self.sent.append(host)
        if 200 <= resp.status_code < 300:
            not_slack = _not_a_webhook_answer(resp)
            if not_slack:
                # A proxy, captive portal or login page answers 200 with HTML: Slack never saw the message.
                log.warning("Slack webhook %s answered HTTP %d with %s: not delivered", host, resp.status_code, not_slack)
                return SendResult(False, counter[0] + 1, resp.status_code,
                                  f"HTTP {resp.status_code} with {not_slack}, not Slack's \"ok\": the message "
                                  "was not delivered (a proxy or login page in the way, or not a webhook URL)")
            return SendResult(True, counter[0] + 1, resp.status_code)
        body = redact((resp.body or "").strip()[:200], url)
        err = f"HTTP {resp.status_code}" + (f": {body}" if body else "")
        log.warning("Slack webhook %s refused the message after %d attempt(s): %s", host, counter[0] + 1, err)
        return SendResult(False, counter[0] + 1, resp.status_code, err)
