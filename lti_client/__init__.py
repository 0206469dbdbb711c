"""LTI Advantage service client (tokens, AGS line items/results/scores, NRPS) for gradesync.

Names are loaded on first use (PEP 562): `from lti_client.types import …` — what the diagnosis and the
CLI's checks need — does not import httpx, PyJWT and the transport (~0.5 s) until a client is used."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "LtiClient": "lti_client.client",
    "LtiError": "lti_client.errors", "PagingLoopError": "lti_client.errors", "UnsafeUrlError": "lti_client.errors",
    "PlatformRegistration": "lti_client.registration", "Vendor": "lti_client.registration",
    "classify": "lti_client.vendors", "classify_token_refusal": "lti_client.vendors",
    **{name: "lti_client.types" for name in (
        "READ_SCOPES", "ROLE_LEARNER", "SCOPE_LINEITEM", "SCOPE_LINEITEM_READONLY", "SCOPE_NRPS",
        "SCOPE_RESULT_READONLY", "SCOPE_SCORE", "CredentialFault", "Endpoint", "ErrorKind", "LineItem",
        "LtiErrorInfo", "Member", "RequestStats", "Result", "Score", "TokenGrant", "TokenRefusal")},
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'lti_client' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from lti_client.client import LtiClient
    from lti_client.errors import LtiError, PagingLoopError, UnsafeUrlError
    from lti_client.registration import PlatformRegistration, Vendor
    from lti_client.types import (READ_SCOPES, ROLE_LEARNER, SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_NRPS,
                                  SCOPE_RESULT_READONLY, SCOPE_SCORE, CredentialFault, Endpoint, ErrorKind,
                                  LineItem, LtiErrorInfo, Member, RequestStats, Result, Score, TokenGrant,
                                  TokenRefusal)
    from lti_client.vendors import classify, classify_token_refusal
