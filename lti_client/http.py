"""One request, done right: allow-list check, bounded concurrency, pacing, retries, accounting.

`Requester.send` is the only place the client touches the network. Policy (issue 3, §6 of
lti-platform-behavior.md):
- every URL must pass `registration.host_allowed` first, else UnsafeUrlError and nothing is sent;
- at most `concurrency` requests in flight, adapted to the platform's throttle answers and bucket
  headers (`limiter.AdaptiveLimiter`, issue 13);
- throttle answers (429, Canvas 403 "Rate Limit Exceeded") are retried after `Retry-After` (seconds or
  HTTP date) or capped exponential backoff with jitter; all requests then wait until that time;
  a low `X-Rate-Limit-Remaining` paces the following requests;
- 5xx, timeouts, connection errors and malformed bodies are retried only when `retry_transient`
  (GETs, token POSTs), never for a score POST;
- a 401 with a bearer token refreshes the token once and retries once;
- every request made is counted in `RequestStats`; tokens never reach messages, logs or stats.
"""
from __future__ import annotations

import email.utils
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from lti_client.errors import LtiError, UnsafeUrlError, parse_error_body
from lti_client.limiter import AdaptiveLimiter
from lti_client.registration import PlatformRegistration
from lti_client.transport import ON_COMPLETE
from lti_client.types import Endpoint, ErrorKind, LtiErrorInfo, RequestStats
from lti_client.urls import redact_url, request_url
from lti_client.vendors.base import VendorProfile, blank_body, kind_of, match_rule

log = logging.getLogger("lti_client")

T = TypeVar("T")
# Malformed bodies on a retryable request: retried at most this many times ("once or twice").
MALFORMED_RETRIES = 2
# A Retry-After beyond this is not waited out in full: we retry then and count the attempt.
RETRY_AFTER_CEILING_S = 120.0

Bearer = Callable[[str | None], Awaitable[str]]   # (stale token or None) -> access token
# Sent with every request unless the caller says otherwise (what httpx's client would add, with our name).
DEFAULT_HEADERS = {"Accept": "*/*", "Accept-Encoding": "gzip, deflate", "User-Agent": "gradesync-lti-client"}


def reason_phrase(response: httpx.Response) -> str:
    """The status line's reason phrase when the platform wrote its own text there, else "".

    Moodle 5.1 puts its refusal text only there (`HTTP/1.0 400 Incorrect score received{…}`, body `[]`,
    lti-platform-behavior.md §10). The standard phrase ("Bad Request") says nothing, and HTTP/2 has none
    (§6.4): no error kind may depend on it alone. Decoded as UTF-8 (httpx's property drops non-ASCII)."""
    raw = response.extensions.get("reason_phrase")
    if not raw:
        return ""
    phrase = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)).strip()
    standard = httpx.codes.get_reason_phrase(response.status_code)
    return "" if phrase.lower() == standard.lower() else phrase


class _Slot:
    """One attempt's place among the requests in flight, given back exactly once: by the transport at the
    answer's last byte (`transport.ON_COMPLETE`: the next request in line goes out then, before the
    waiting task runs, issue 13), or by `send` when the transport does not call it."""

    __slots__ = ("_limiter", "_held", "in_flight")

    def __init__(self, limiter: AdaptiveLimiter) -> None:
        self._limiter, self._held = limiter, True
        self.in_flight = 0                  # ours in flight when the answer came, this one included

    def release(self) -> None:
        if self._held:
            self._held = False
            self.in_flight = self._limiter.in_flight
            self._limiter.release()


@dataclass
class Reply(Generic[T]):
    response: httpx.Response
    value: T


class Scrubber:
    """Secrets (access tokens, assertions) that must never appear in an error message."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, secret: str) -> None:
        if secret and len(secret) >= 8:
            self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return text


class Requester:
    """Sends requests for one registration with the policy above; owns pacing state and stats."""

    def __init__(self, reg: PlatformRegistration, profile: VendorProfile, transport: httpx.AsyncBaseTransport, *,
                 stats: RequestStats, concurrency: int, timeout: float, max_retries: int, backoff_base: float,
                 backoff_cap: float, clock: Callable[[], float],
                 sleep: Callable[[float], Awaitable[Any]]) -> None:
        self.reg, self.profile, self._transport, self.stats = reg, profile, transport, stats
        # Requests go straight to the transport (httpx's transport API): no redirects (a redirect could
        # lead a bearer token past the host allow-list), no cookies, and none of the client's per-request
        # bookkeeping (issue 13: CPU per request).
        self._timeouts = httpx.Timeout(timeout).as_dict()
        self.limiter = AdaptiveLimiter(concurrency, clock=clock, request_cost=profile.rate_limit_request_cost)
        self.max_retries, self.backoff_base, self.backoff_cap = max_retries, backoff_base, backoff_cap
        self._clock, self._sleep = clock, sleep
        self.scrub = Scrubber()
        self._allowed: dict[str, bool] = {}     # check_url's verdicts by URL prefix
        self._resume_at = 0.0                    # clock time before which no request is sent
        self._remaining: float | None = None    # last X-Rate-Limit-Remaining seen
        self._rng = random.Random()

    # ---- errors ---------------------------------------------------------------------------------
    def error(self, kind: ErrorKind, status: int | None, error_type: str | None, message: str,
              url: str | None, cls: type[LtiError] = LtiError) -> LtiError:
        """An LtiError with a scrubbed message and a redacted URL."""
        info = LtiErrorInfo(kind=kind, status=status, error_type=error_type,
                            message=self.scrub(message), url=redact_url(url))
        return cls(info)

    def check_url(self, url: str) -> None:
        """Raise UnsafeUrlError unless `url` passes the registration's host allow-list."""
        # The verdict depends on scheme and host only, both inside the text before the third "/":
        # remembered per such prefix (issue 13: every page request is checked).
        key = "/".join(url.split("/", 3)[:3])
        allowed = self._allowed.get(key)
        if allowed is None:
            allowed = self.reg.host_allowed(url)
            if len(self._allowed) < 256:
                self._allowed[key] = allowed
        if not allowed:
            raise self.error(ErrorKind.unsafe_url, None, None,
                             "URL refused: not https/loopback or host not in allowed_hosts", url,
                             UnsafeUrlError)

    # ---- waiting --------------------------------------------------------------------------------
    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_cap, self.backoff_base * (2 ** max(attempt - 1, 0)))
        return delay * (0.5 + self._rng.random() / 2)          # jitter: 50–100 % of the step

    def _retry_after(self, response: httpx.Response) -> float | None:
        value = response.headers.get("retry-after")
        if not value:
            return None
        value = value.strip()
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                return None
            seconds = when.timestamp() - self._clock()
        return min(max(seconds, 0.0), max(RETRY_AFTER_CEILING_S, self.backoff_cap))

    def _observe(self, response: httpx.Response, in_flight: int) -> None:
        profile = self.profile
        if profile.rate_limit_low_water is None and profile.rate_limit_request_cost is None:
            return
        value = response.headers.get("x-rate-limit-remaining")
        try:
            # A response without the header says nothing about the bucket: forget the old reading
            # rather than pace forever on it.
            self._remaining = float(value) if value is not None else None
        except ValueError:
            self._remaining = None
        if self._remaining is not None and 200 <= response.status_code < 300:
            self.limiter.on_remaining(self._remaining, in_flight)

    async def _pace(self) -> None:
        wait = max(0.0, self._resume_at - self._clock())
        low = self.profile.rate_limit_low_water
        if low is not None and self._remaining is not None and self._remaining < low:
            # Slow down before the bucket empties (§6.1/§6.2): the emptier, the longer the pause.
            fill = max(self._remaining, 0.0) / low
            wait = max(wait, min(self.backoff_cap, self.backoff_base * (1 + 3 * (1 - fill))))
        if wait > 0:
            self.stats.throttle_wait_s += wait
            await self._sleep(wait)

    def _note_throttled(self, response: httpx.Response, attempt: int) -> None:
        wait = self._retry_after(response)
        if wait is None:
            wait = self._backoff(attempt)
        self.stats.throttled += 1
        # Everyone waits (the next `_pace`, at the top of every attempt): the bucket is per tool,
        # not per request (§6.1).
        self._resume_at = max(self._resume_at, self._clock() + wait)

    def _starter(self, request: httpx.Request) -> Callable[[], Any] | None:
        # A transport that can write a request synchronously (transport.FastTransport.begin) lets the
        # limiter send it the moment a slot frees; any other transport sends it when its task runs.
        begin = getattr(self._transport, "begin", None)
        return (lambda: begin(request)) if begin is not None else None

    # ---- the request ----------------------------------------------------------------------------
    async def send(self, method: str, url: str, endpoint: Endpoint, *, decode: Callable[[httpx.Response], T],
                   headers: dict[str, str] | None = None, content: bytes | None = None,
                   form: Callable[[], dict[str, str]] | None = None, retry_transient: bool = True,
                   bearer: Bearer | None = None) -> Reply[T]:
        """Send one logical request (with its permitted retries); return the decoded 2xx reply or
        raise LtiError. `decode` raising ValueError means a malformed body. `form` is rebuilt per
        attempt (a fresh client assertion each time)."""
        self.check_url(url)
        attempt = malformed = 0
        refreshed = False
        token: str | None = None
        stale: str | None = None
        while True:
            # Pace first, then take the token: a throttle pause can outlast a short-lived token, and a
            # token fetched before the pause would come back as a 401 that wastes the one refresh.
            await self._pace()
            if bearer is not None:
                token, stale = await bearer(stale), None
            req_headers = {**DEFAULT_HEADERS, **(headers or {})}
            if token:
                req_headers["Authorization"] = f"Bearer {token}"
            data = form() if form else None           # built before counting: may raise
            slot = _Slot(self.limiter)
            request = httpx.Request(method, request_url(url), headers=req_headers, content=content, data=data,
                                    extensions={"timeout": self._timeouts, ON_COMPLETE: slot.release})
            started = await self.limiter.acquire(start=self._starter(request), release=slot.release)
            try:
                self.stats.count(endpoint.value)
                try:
                    response = await (started.response() if started is not None
                                      else self._transport.handle_async_request(request))
                    response.request = request
                    await response.aread()
                except httpx.TransportError as exc:        # timeouts, connect/read errors
                    response, failure = None, exc
            finally:
                slot.release()                  # unless the transport did at the last byte
            # How many were out when the platform answered (this one included): what its bucket saw.
            in_flight = slot.in_flight
            if response is None:
                what = "timeout" if isinstance(failure, httpx.TimeoutException) else "connection error"
                log.info("%s %s: %s (attempt %d)", method, redact_url(url), what, attempt + 1)
                if retry_transient and attempt < self.max_retries:
                    attempt += 1
                    self.stats.retries += 1
                    await self._sleep(self._backoff(attempt))
                    continue
                raise self.error(ErrorKind.transient, None, type(failure).__name__,
                                 f"{what} after {attempt + 1} attempt(s)", url)
            self._observe(response, in_flight)
            status = response.status_code
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s %s -> %d", method, redact_url(url), status)
            if 200 <= status < 300:
                try:
                    return Reply(response, decode(response))
                except ValueError as exc:
                    if retry_transient and malformed < MALFORMED_RETRIES and attempt < self.max_retries:
                        malformed += 1
                        attempt += 1
                        self.stats.retries += 1
                        await self._sleep(self._backoff(attempt))
                        continue
                    raise self.error(ErrorKind.malformed, status, None, f"malformed body: {exc}", url) from None
            text, reason = response.text, reason_phrase(response)
            matched = match_rule(self.profile, status, text, endpoint, reason)
            kind = kind_of(matched, status)
            if status == 401 and bearer is not None and not refreshed:
                # Expired/revoked token (Canvas "Access token expired", §1.4, §7 #12): refresh once.
                refreshed, stale = True, token
                self.stats.retries += 1
                continue
            if kind is ErrorKind.throttled and attempt < self.max_retries:
                # A throttled request was refused unprocessed: safe to retry, even a score POST.
                attempt += 1
                self.stats.retries += 1
                self.limiter.on_throttle(in_flight)
                self._note_throttled(response, attempt)
                continue
            if kind is ErrorKind.throttled:
                self.limiter.on_throttle(in_flight)
                self.stats.throttled += 1
            if kind is ErrorKind.transient and retry_transient and attempt < self.max_retries:
                attempt += 1
                self.stats.retries += 1
                await self._sleep(self._backoff(attempt))
                continue
            error_type, message = parse_error_body(text, status, reason)
            if matched is not None and matched.note:
                # The note says what the answer means; the platform's own words follow when it sent any.
                message = matched.note if blank_body(text) and not reason else f"{matched.note}: {message}"
            raise self.error(kind, status, error_type, message, url)
