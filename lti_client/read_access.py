"""Which token opens each read service (line items, results, NRPS), with as few token requests as possible.

The normal case costs one token request: all read scopes at once (READ_SCOPES), one token for every
read. Canvas refuses a *whole* request when one scope is not on the developer key (400 invalid_scope,
lti-platform-behavior.md §1.6), so a key without NRPS or without `lineitem.readonly` would leave
nothing readable. On an all-or-nothing platform a refused combined request is therefore asked again in
smaller sets: the scopes the refusal did not name, in one request (Canvas's newer text lists the missing
ones), then each service still closed on its own, `lineitem` as a last resort for line items (AGS §3.1:
GETs accept it; Canvas ACTION_SCOPE_MATCHERS, §2.2). A service that stays closed raises a clear
`scope_not_granted` error for its own reads only. Moodle grants a subset silently (§1.6): never split.
"""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, replace

from lti_client.errors import LtiError
from lti_client.tokens import TokenManager
from lti_client.types import (READ_SCOPES, SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_NRPS,
                              SCOPE_RESULT_READONLY, Endpoint, ErrorKind, LtiErrorInfo, TokenGrant,
                              TokenRefusal)
from lti_client.urls import redact_url

# Read service → the scopes that open it (any one suffices), in the order they are asked for.
READ_SERVICES: dict[Endpoint, tuple[str, ...]] = {
    Endpoint.line_items: (SCOPE_LINEITEM_READONLY, SCOPE_LINEITEM),
    Endpoint.results: (SCOPE_RESULT_READONLY,),
    Endpoint.memberships: (SCOPE_NRPS,),
}
_WHAT = {Endpoint.line_items: "AGS line items", Endpoint.results: "AGS results",
         Endpoint.memberships: "the NRPS roster"}
SCOPE_NOT_GRANTED = "scope_not_granted"
_URL = re.compile(r"https?://[^\s,;\"'<>]+")


def scopes_named_in(message: str) -> frozenset[str]:
    """The scope URIs a refusal names ("The following scopes were requested, but not granted: …")."""
    return frozenset(m.rstrip(".") for m in _URL.findall(message or ""))


@dataclass(frozen=True)
class ReadPlan:
    """The outcome: the scope set whose token opens each service, and why the others stay closed."""
    tokens: dict[Endpoint, frozenset[str]]
    refused: dict[Endpoint, LtiErrorInfo]
    grant: TokenGrant                        # READ_SCOPES asked; granted = every read scope obtained


class ReadAccess:
    """Finds the ReadPlan once per client (concurrent readers wait for the same answer)."""

    def __init__(self, tokens: TokenManager, *, split: bool) -> None:
        self._tokens, self._split = tokens, split
        self._lock = asyncio.Lock()
        self._plan: ReadPlan | None = None

    async def plan(self) -> ReadPlan:
        """The plan; raises LtiError (auth) when no read service can be opened at all, or the token
        endpoint's own error (credentials rejected, unavailable)."""
        async with self._lock:
            if self._plan is None:
                self._plan = await self._find()
            return self._plan

    async def _grant(self, scopes: frozenset[str]) -> TokenGrant | None:
        """The grant of `scopes`, or None when the platform refused these scopes (and only them)."""
        try:
            return (await self._tokens.get(scopes)).grant
        except LtiError as exc:
            if exc.info.refusal is TokenRefusal.scope_refused:
                return None
            raise

    async def _find(self) -> ReadPlan:
        try:
            return _plan_from({READ_SCOPES: (await self._tokens.get(READ_SCOPES)).grant}, None)
        except LtiError as exc:
            if exc.info.refusal is not TokenRefusal.scope_refused or not self._split:
                raise
            refusal = exc.info
        grants: dict[frozenset[str], TokenGrant] = {}
        named = scopes_named_in(refusal.message) & READ_SCOPES
        rest = READ_SCOPES - named
        if named and rest and (grant := await self._grant(rest)) is not None:
            grants[rest] = grant
        for service, alternatives in READ_SERVICES.items():
            for scope in alternatives:
                if any(scope in g.granted for g in grants.values()):
                    break
                if scope in named:
                    continue                          # the platform already said no
                if (grant := await self._grant(frozenset({scope}))) is not None and grant.has(scope):
                    grants[frozenset({scope})] = grant
                    break
        plan = _plan_from(grants, refusal)
        if not plan.tokens:
            raise LtiError(refusal)                   # nothing readable: the refusal as the platform said it
        return plan


def _plan_from(grants: dict[frozenset[str], TokenGrant], refusal: LtiErrorInfo | None) -> ReadPlan:
    tokens: dict[Endpoint, frozenset[str]] = {}
    refused: dict[Endpoint, LtiErrorInfo] = {}
    for service, alternatives in READ_SERVICES.items():
        key = next((k for k, g in grants.items() if any(g.has(s) for s in alternatives)), None)
        if key is not None:
            tokens[service] = key
            continue
        said = f"; the token endpoint said: {refusal.message}" if refusal is not None else ""
        refused[service] = LtiErrorInfo(                # no request was sent for it: no status
            ErrorKind.auth, None, SCOPE_NOT_GRANTED,
            f"the platform did not grant {alternatives[0]} to this tool: {_WHAT[service]} cannot be read{said}",
            None, refusal=TokenRefusal.scope_refused)
    granted = frozenset(s for g in grants.values() for s in g.granted)
    return ReadPlan(tokens, refused, TokenGrant(requested=READ_SCOPES, granted=granted))


def closed_error(plan: ReadPlan, service: Endpoint, url: str | None) -> LtiErrorInfo | None:
    """The error of a read of `service` at `url` (redacted here) when the plan leaves it closed, else None."""
    info = plan.refused.get(service)
    return replace(info, url=redact_url(url)) if info is not None else None
