"""The token endpoint: OAuth 2.0 client credentials with a JWT client assertion (lti-platform-behavior.md §1).

The assertion is verified against the registration's public key (RS256 only); the claim rules
(aud, iss, iat window, required claims) and every refusal's status/body come from the profile.
"""
from __future__ import annotations

from functools import lru_cache
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from starlette.requests import Request
from starlette.responses import Response

from sandbox_lms import urls
from sandbox_lms.profiles.base import Profile, TokenProblem
from sandbox_lms.responses import json_response, media_type_of
from sandbox_lms.runtime import Runtime
from sandbox_lms.state import Registration

FORM = "application/x-www-form-urlencoded"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_FIELDS = ("grant_type", "client_assertion_type", "client_assertion", "scope")


@lru_cache(maxsize=256)
def _public_key(pem: str):
    return load_pem_public_key(pem.encode("ascii"))


def _verify(assertion: str, reg: Registration, profile: Profile, token_url: str,
            now: float) -> tuple[TokenProblem, str] | None:
    """Check the assertion; the first problem found, or None when it is acceptable."""
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        return TokenProblem.undecodable, f"assertion is not a JWT: {exc}"
    if claims.get("sub") != reg.client_id:
        return TokenProblem.unknown_client, "unknown client"
    try:
        # Time and audience rules are ours (platform clock, per-profile windows), not PyJWT's.
        jwt.decode(assertion, _public_key(reg.public_key_pem), algorithms=["RS256"],
                   options={"verify_aud": False, "verify_exp": False, "verify_iat": False,
                            "verify_nbf": False, "verify_iss": False})
    except jwt.PyJWTError as exc:
        return TokenProblem.signature, f"signature invalid: {exc}"
    missing = [c for c in profile.required_claims if c not in claims]
    if missing:
        return TokenProblem.missing_claim, "the following assertions are missing: " + ", ".join(missing)
    if profile.issuer_checked and claims.get("iss") != reg.client_id:
        return TokenProblem.issuer, "iss must be the client_id"
    if profile.audience_checked:
        expected = profile.expected_audience(token_url)
        aud = claims.get("aud")
        if not (aud == expected or (isinstance(aud, list) and expected in aud)):
            return TokenProblem.audience, f"aud must be {expected}"
    exp, iat = claims.get("exp"), claims.get("iat")
    if exp is not None and (not isinstance(exp, (int, float)) or exp <= now):
        return TokenProblem.expired, "the JWT has expired"
    if iat is not None:
        if not isinstance(iat, (int, float)):
            return TokenProblem.iat_old, "iat must be numeric"
        if profile.iat_max_age_s is not None and iat < now - profile.iat_max_age_s:
            return TokenProblem.iat_old, f"iat older than {profile.iat_max_age_s} s"
        if iat > now + profile.iat_future_s:
            return TokenProblem.iat_future, "iat in the future"
    return None


async def token_endpoint(request: Request, reg: Registration, profile: Profile, rt: Runtime) -> Response:
    """Answer one token request: verify the client assertion, apply the scope policy, issue a token."""
    content_type = request.headers.get("content-type", "")
    form_ok = content_type == FORM if profile.form_content_type_exact else media_type_of(content_type) == FORM
    if not form_ok:
        return profile.token_refusal(TokenProblem.content_type, "Content-Type must be " + FORM)
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace"),
                                         keep_blank_values=True).items()}
    for name in _FIELDS:
        if not form.get(name):
            return profile.token_refusal(TokenProblem.missing_field, f"{name} is missing")
    if form["grant_type"] != "client_credentials":
        return profile.token_refusal(TokenProblem.grant_type, "only client_credentials is supported")
    if form["client_assertion_type"] != JWT_BEARER:
        return profile.token_refusal(TokenProblem.assertion_type, "client_assertion_type must be jwt-bearer")
    base_url = f"{request.url.scheme}://{request.url.netloc}"
    problem = _verify(form["client_assertion"], reg, profile, urls.token_url(base_url, reg), rt.now().timestamp())
    if problem is not None:
        return profile.token_refusal(*problem)
    granted, refusal = profile.grant_scopes(set(form["scope"].split()), set(reg.granted_scopes))
    if refusal is not None:
        return refusal
    value, issued = rt.issue_token(reg, granted)
    return json_response({"access_token": value, "token_type": "Bearer",
                          "expires_in": reg.faults.token_lifetime_s, "scope": " ".join(sorted(granted))},
                         media_type=profile.token_media_type, headers={"Cache-Control": "no-store"})
