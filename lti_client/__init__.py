"""LTI Advantage service client (tokens, AGS line items/results/scores, NRPS) for gradesync."""
from lti_client.client import LtiClient
from lti_client.errors import LtiError, PagingLoopError, UnsafeUrlError
from lti_client.registration import PlatformRegistration, Vendor
from lti_client.types import (READ_SCOPES, ROLE_LEARNER, SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_NRPS,
                              SCOPE_RESULT_READONLY, SCOPE_SCORE, CredentialFault, Endpoint, ErrorKind,
                              LineItem, LtiErrorInfo, Member, RequestStats, Result, Score, TokenGrant,
                              TokenRefusal)
from lti_client.vendors import classify, classify_token_refusal

__all__ = [
    "LtiClient", "LtiError", "PagingLoopError", "UnsafeUrlError", "PlatformRegistration", "Vendor",
    "classify", "classify_token_refusal", "CredentialFault", "Endpoint", "ErrorKind", "LineItem",
    "LtiErrorInfo", "Member", "RequestStats", "Result", "Score", "TokenGrant", "TokenRefusal", "READ_SCOPES",
    "ROLE_LEARNER", "SCOPE_LINEITEM", "SCOPE_LINEITEM_READONLY", "SCOPE_NRPS", "SCOPE_RESULT_READONLY",
    "SCOPE_SCORE",
]
