"""`LtiClient`: the pipeline's window on one LMS registration (tokens, AGS, NRPS).

Protocol and vendor quirks live below this file (`tokens`, `http`, `parse`, `links`, `vendors/`);
this file only composes them into the public operations.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import urljoin

import httpx
import orjson

from lti_client import gc_quiet
from lti_client.errors import LtiError, PagingLoopError
from lti_client.http import Bearer, Requester
from lti_client.links import next_link
from lti_client.parse import (container_items, parse_line_item, parse_member, parse_result,
                              score_body)
from lti_client.read_access import SCOPE_NOT_GRANTED, ReadAccess, closed_error
from lti_client.registration import PlatformRegistration
from lti_client.tokens import TokenManager
from lti_client.transport import ProxiedTransport, fast_transport, proxy_configured
from lti_client.types import (SCOPE_SCORE, Endpoint, ErrorKind, LineItem, Member, RequestStats, Result,
                              Score, TokenGrant, TokenRefusal)
from lti_client.urls import redact_url, service_url, with_params
from lti_client.vendors import profile_for

T = TypeVar("T")

MEDIA_LINEITEMS = "application/vnd.ims.lis.v2.lineitemcontainer+json"
MEDIA_RESULTS = "application/vnd.ims.lis.v2.resultcontainer+json"
MEDIA_MEMBERSHIPS = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
MEDIA_SCORE = "application/vnd.ims.lis.v1.score+json"
SCORE_SCOPES = frozenset({SCOPE_SCORE})
# A listing longer than this is treated as a paging loop (next URLs that never repeat nor end).
MAX_PAGES = 5000


def _link_values(response: httpx.Response) -> list[str]:
    # Decoded from the raw bytes as UTF-8: Moodle's typographic quotes (§2.3) arrive as UTF-8, and
    # httpx would decode the whole header block as latin-1 if any other header is not valid UTF-8.
    return [value.decode("utf-8", "replace") for name, value in response.headers.raw if name.lower() == b"link"]


def _loads(raw: bytes) -> Any:
    # orjson parses a page in a fraction of json's time (issue 13: CPU per request); what it refuses
    # (NaN literals, invalid UTF-8, …) falls back to json, which decides as before. Integers beyond
    # 64 bits become floats in orjson: no LTI id is a JSON number that large (ids are strings, §2.1).
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


class LtiClient:
    """Async client for one platform registration; use `async with LtiClient(reg) as lms:`."""

    def __init__(self, registration: PlatformRegistration, *, transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float = 30.0, max_retries: int = 4, backoff_base: float = 0.5,
                 backoff_cap: float = 20.0, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep, in_flight: int | None = None) -> None:
        """in_flight: a cap below the key's limit, when this client holds only part of the key's
        budget (gradesync.budget: the slots a batch leased)."""
        self.registration = registration
        self.profile = profile_for(registration.vendor)
        self.stats = RequestStats()
        concurrency = registration.key_in_flight_limit
        if in_flight is not None:
            concurrency = max(1, min(concurrency, in_flight))
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        if transport is None:
            # Less CPU per request (transport.py); behind a proxy, httpx's client (it reads the proxy settings).
            transport = ProxiedTransport(limits) if proxy_configured() else fast_transport(limits)
        self._transport = transport
        self._requester = Requester(
            registration, self.profile, transport, stats=self.stats, concurrency=concurrency, timeout=timeout,
            max_retries=max_retries, backoff_base=backoff_base, backoff_cap=backoff_cap,
            clock=clock, sleep=sleep)
        self._tokens = TokenManager(registration, self._requester, clock)
        self._reads = ReadAccess(self._tokens, split=self.profile.scopes_all_or_nothing)
        self._holds_gc = False

    async def __aenter__(self) -> "LtiClient":
        gc_quiet.hold()                  # no full collection stalls the requests in flight (gc_quiet.py)
        self._holds_gc = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def in_flight_limit(self) -> int:
        """Requests this client keeps in flight now (adapted to the platform, ≤ the configured ceiling)."""
        return self._requester.limiter.limit

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._holds_gc:
            self._holds_gc = False
            gc_quiet.release()
        await self._transport.aclose()

    # ---- tokens ---------------------------------------------------------------------------------
    async def read_grant(self) -> TokenGrant:
        """The read scopes (line items, results, NRPS) the platform grants: one token request normally;
        on an all-or-nothing platform that refuses one of them, smaller sets (`read_access`). Raises
        LtiError(kind=auth) when nothing at all can be read; `info.refusal` says why (scope refused,
        credentials rejected) and 5xx/network raise with `unavailable`."""
        return (await self._reads.plan()).grant

    async def score_grant(self) -> TokenGrant:
        """The grant for the score scope, requested on its own (Canvas fails a whole request for one
        ungranted scope, §1.6). An OAuth refusal is returned as `error` (`error.refusal`:
        scope_refused or credentials_rejected; `grant.refusal_for(SCOPE_SCORE)`); 5xx/network/throttling
        raise LtiError with `info.refusal = unavailable`."""
        try:
            return (await self._tokens.get(SCORE_SCOPES)).grant
        except LtiError as exc:
            if exc.info.refusal is not TokenRefusal.unavailable:
                return TokenGrant(requested=SCORE_SCOPES, granted=frozenset(), error=exc.info)
            raise

    def _bearer(self, scopes: frozenset[str]) -> Bearer:
        async def bearer(stale: str | None) -> str:
            return (await self._tokens.get(scopes, stale=stale)).access_token
        return bearer

    async def _read_scopes(self, url: str, service: Endpoint) -> frozenset[str]:
        """The scope set whose token reads `service`; raises `scope_not_granted` (kind auth) when the
        platform keeps that service closed — Moodle drops ungranted scopes silently, Canvas refuses
        them (§1.6): say so instead of sending a doomed request."""
        plan = await self._reads.plan()
        closed = closed_error(plan, service, url)
        if closed is not None:
            raise LtiError(closed)
        return plan.tokens[service]

    # ---- paging ---------------------------------------------------------------------------------
    async def _list(self, url: str, endpoint: Endpoint, accept: str, parse: Callable[[Any], T],
                    members_key: str | None = None) -> list[T]:
        """All records of a paged container: follows Link rel=next (and a body next-page link where
        the profile has one); a repeated next URL raises PagingLoopError. (Every page URL is checked
        against the allow-list where it is sent, `Requester.send`.)"""
        seen: set[str] = set()
        records: list[T] = []
        page_url: str | None = url
        bearer = self._bearer(await self._read_scopes(url, endpoint))
        body_next_key = self.profile.body_next_page_key if members_key else None

        def decode(response: httpx.Response) -> tuple[list[T], str | None]:
            body = _loads(response.content or b"null")
            items = [parse(obj) for obj in container_items(body, members_key)]
            nxt = body.get(body_next_key) if body_next_key and isinstance(body, dict) else None
            return items, nxt if isinstance(nxt, str) and nxt.strip() else None

        pages = 0
        while page_url is not None:
            if page_url in seen or pages >= MAX_PAGES:
                why = "next URL repeated" if page_url in seen else "no last page"
                raise self._requester.error(ErrorKind.paging_loop, None, None,
                                            f"paging loop ({why}) after {pages} page(s)", page_url, PagingLoopError)
            seen.add(page_url)
            pages += 1
            reply = await self._requester.send("GET", page_url, endpoint, decode=decode,
                                               headers={"Accept": accept}, bearer=bearer)
            items, body_next = reply.value
            records.extend(items)
            base = str(reply.response.url)
            page_url = next_link([self.profile.link_target(v) for v in _link_values(reply.response)], base)
            if page_url is None and body_next:
                page_url = urljoin(base, body_next.strip())
        return records

    def _page_size(self, endpoint: Endpoint) -> int | None:
        if endpoint in self.profile.never_paged:
            return None
        return self.registration.page_size or self.profile.page_sizes.get(endpoint)

    # ---- AGS ------------------------------------------------------------------------------------
    async def list_line_items(self, lineitems_url: str, *, resource_link_id: str | None = None,
                              tag: str | None = None, resource_id: str | None = None) -> list[LineItem]:
        """All line items of a container, filtered (server side where the platform reads the filter,
        and again client side, since a platform may ignore a parameter it does not know)."""
        self._requester.check_url(lineitems_url)
        await self._read_scopes(lineitems_url, Endpoint.line_items)
        params: dict[str, str | int | None] = {"limit": self._page_size(Endpoint.line_items),
                                               "tag": tag, "resource_id": resource_id}
        for name in self.profile.resource_link_params:
            params[name] = resource_link_id
        items = await self._list(with_params(lineitems_url, params), Endpoint.line_items,
                                 MEDIA_LINEITEMS, parse_line_item)
        return [li for li in items
                if (resource_link_id is None or li.resource_link_id == resource_link_id)
                and (tag is None or li.tag == tag)
                and (resource_id is None or li.resource_id == resource_id)]

    async def list_results(self, line_item_id: str, *, user_id: str | None = None) -> list[Result]:
        """The results of one line item (optionally of one user)."""
        url = service_url(line_item_id, "results")
        self._requester.check_url(url)
        await self._read_scopes(url, Endpoint.results)
        server_filter = user_id if self.profile.server_side_user_filter else None
        params: dict[str, str | int | None] = {"limit": self._page_size(Endpoint.results), "user_id": server_filter}
        results = await self._list(with_params(url, params), Endpoint.results, MEDIA_RESULTS, parse_result)
        return [r for r in results if user_id is None or r.user_id == user_id]

    async def post_score(self, line_item_id: str, score: Score, *, vendor_extensions: bool = True) -> dict | None:
        """POST one score. Retried only after a throttle answer (refused unprocessed); a 5xx or timeout
        raises at once (the resync re-reads the result before deciding). Returns the JSON body or None."""
        url = service_url(line_item_id, "scores")
        self._requester.check_url(url)
        grant = await self.score_grant()
        if grant.error is not None:
            raise LtiError(grant.error)
        if not grant.has(SCOPE_SCORE):
            refused = self._requester.error(ErrorKind.auth, None, SCOPE_NOT_GRANTED,
                                            f"the platform did not grant {SCOPE_SCORE}", url)
            raise LtiError(replace(refused.info, refusal=TokenRefusal.scope_refused))
        extensions = self.profile.score_extensions(score) if vendor_extensions else None
        payload = json.dumps(score_body(score, extensions)).encode()

        def decode(response: httpx.Response) -> dict | None:
            # 2xx = accepted: an empty (Moodle) or odd body must not turn success into failure.
            try:
                body = json.loads(response.content) if response.content.strip() else None
            except ValueError:
                return None
            return body if isinstance(body, dict) else None

        reply = await self._requester.send(
            "POST", url, Endpoint.scores, decode=decode, content=payload, retry_transient=False,
            headers={"Content-Type": MEDIA_SCORE, "Accept": "application/json"},
            bearer=self._bearer(SCORE_SCOPES))
        return reply.value

    # ---- NRPS -----------------------------------------------------------------------------------
    async def list_members(self, memberships_url: str) -> list[Member]:
        """Every member of a context (NRPS memberships container, all pages)."""
        self._requester.check_url(memberships_url)
        await self._read_scopes(memberships_url, Endpoint.memberships)
        url = with_params(memberships_url, {"limit": self._page_size(Endpoint.memberships)})
        return await self._list(url, Endpoint.memberships, MEDIA_MEMBERSHIPS, parse_member, members_key="members")
