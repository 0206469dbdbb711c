"""Access tokens per scope set: fetched once, cached until shortly before expiry, refused once.

lti-platform-behavior.md §1: form-encoded client-credentials POST with a fresh RS256 assertion;
the granted `scope` is read from the response (Moodle grants a subset silently, §1.6) and a response
without `scope` means everything requested was granted. A refusal (OAuth error) is remembered for
the client's lifetime: asking again in the same run would only be refused again — a refused scope set
for that set, rejected credentials (key, client_id, clock: issue 10 §3) for every set.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, replace

import httpx

from lti_client.assertion import KeyUnreadable, build_client_assertion
from lti_client.errors import LtiError
from lti_client.http import Requester
from lti_client.parse import BodyShapeError
from lti_client.registration import PlatformRegistration
from lti_client.types import CredentialFault, Endpoint, ErrorKind, LtiErrorInfo, TokenGrant, TokenRefusal
from lti_client.vendors.base import token_refusal

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Refresh this long before `expires_in` runs out (Hypothesis uses 60 s, §7 #12).
EXPIRY_LEEWAY_S = 60.0
# Canvas and Moodle issue 3600 s tokens (§1.4); used when a platform omits `expires_in`.
DEFAULT_EXPIRES_IN_S = 3600.0
# error_type of an assertion we could not sign (our key file): nothing was sent.
KEY_UNREADABLE = "key_unreadable"
# Token answers that say nothing about the tool: another try may succeed.
_UNAVAILABLE = frozenset({ErrorKind.transient, ErrorKind.throttled, ErrorKind.malformed})


@dataclass(frozen=True)
class CachedToken:
    access_token: str
    expires_at: float                 # clock time after which it is not used any more
    grant: TokenGrant

    def __repr__(self) -> str:       # never print the token
        return f"CachedToken(expires_at={self.expires_at}, grant={self.grant!r})"


@dataclass(frozen=True)
class _TokenBody:
    access_token: str
    expires_in: float
    scope: frozenset[str] | None


def _decode_token(response: httpx.Response) -> _TokenBody:
    body = json.loads(response.content or b"null")
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise BodyShapeError("token response without access_token")
    try:
        expires_in = float(body.get("expires_in") or DEFAULT_EXPIRES_IN_S)
    except (TypeError, ValueError):
        expires_in = DEFAULT_EXPIRES_IN_S
    raw_scope = body.get("scope")
    if isinstance(raw_scope, list):
        scopes = frozenset(str(s) for s in raw_scope if s)
    elif isinstance(raw_scope, str):
        scopes = frozenset(raw_scope.replace(",", " ").split())
    else:
        scopes = frozenset()
    return _TokenBody(body["access_token"], expires_in, scopes or None)


class TokenManager:
    """Tokens of one registration, keyed by the exact scope set requested."""

    def __init__(self, reg: PlatformRegistration, requester: Requester, clock: Callable[[], float]) -> None:
        self._reg, self._requester, self._clock = reg, requester, clock
        self._cache: dict[frozenset[str], CachedToken] = {}
        self._refused: dict[frozenset[str], LtiErrorInfo] = {}
        # Rejected credentials (key, client_id, clock) are rejected for every scope set: remembered once.
        self._rejected: LtiErrorInfo | None = None
        self._locks: dict[frozenset[str], asyncio.Lock] = {}

    async def get(self, scopes: frozenset[str], *, stale: str | None = None) -> CachedToken:
        """A valid token for `scopes`; `stale` (a token a platform just answered 401 to) is not reused.
        Raises LtiError(kind=auth) when the token endpoint refuses, with `info.refusal` saying whether
        the scopes or the credentials were refused; 5xx/network/throttling raise with `unavailable`."""
        cached = self._cache.get(scopes)
        if (cached is not None and cached.access_token != stale and self._clock() < cached.expires_at
                and self._rejected is None and scopes not in self._refused):
            return cached                    # the common case, without the lock (issue 13: once per request)
        lock = self._locks.setdefault(scopes, asyncio.Lock())
        async with lock:                     # concurrent callers share one token request
            if self._rejected is not None:
                raise LtiError(self._rejected)
            if scopes in self._refused:
                raise LtiError(self._refused[scopes])
            cached = self._cache.get(scopes)
            if cached and cached.access_token != stale and self._clock() < cached.expires_at:
                return cached
            token = await self._fetch(scopes)
            self._cache[scopes] = token
            return token

    def _form(self, scopes: frozenset[str]) -> dict[str, str]:
        try:
            assertion = build_client_assertion(self._reg, self._clock())
        except KeyUnreadable as exc:
            raise self._requester.error(ErrorKind.auth, None, KEY_UNREADABLE, str(exc), self._reg.token_url) from None
        self._requester.scrub.add(assertion)
        return {
            "grant_type": "client_credentials",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion,
            "scope": " ".join(sorted(scopes)),
        }

    async def _fetch(self, scopes: frozenset[str]) -> CachedToken:
        try:
            reply = await self._requester.send(
                "POST", self._reg.token_url, Endpoint.token, decode=_decode_token,
                headers={"Accept": "application/json"}, form=lambda: self._form(scopes))
        except LtiError as exc:
            info = self._with_refusal(exc.info)
            if info.refusal is TokenRefusal.credentials_rejected:
                self._rejected = info
            elif info.kind is ErrorKind.auth:
                self._refused[scopes] = info
            raise type(exc)(info) from None
        body = reply.value
        self._requester.scrub.add(body.access_token)
        leeway = min(EXPIRY_LEEWAY_S, body.expires_in / 2)
        grant = TokenGrant(requested=scopes, granted=body.scope if body.scope is not None else scopes)
        return CachedToken(body.access_token, self._clock() + body.expires_in - leeway, grant)

    def _with_refusal(self, info: LtiErrorInfo) -> LtiErrorInfo:
        """`info` with what the refusal means: an OAuth 4xx read by the vendor's token table, anything
        else (5xx, timeout, throttled, unparsable answer) `unavailable`."""
        if info.kind in _UNAVAILABLE:
            return replace(info, refusal=TokenRefusal.unavailable)
        if info.kind is not ErrorKind.auth:      # e.g. a token URL outside allowed_hosts, a redirect
            return replace(info, refusal=TokenRefusal.credentials_rejected, credential_fault=CredentialFault.request)
        refusal, fault = token_refusal(self._requester.profile, info.error_type, info.message)
        return replace(info, refusal=refusal, credential_fault=fault)
