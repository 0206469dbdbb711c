"""The RS256 client assertion of the OAuth2 client-credentials grant (private_key_jwt).

Claims per lti-platform-behavior.md §1.2–1.3: `iss = sub = client_id` (D2L answers invalid_client
otherwise), `aud` = the registration's token audience (the token URL, or D2L's fixed audience),
`iat`, a short `exp`, a unique `jti`, and the `kid` header. The key file is read here, at signing
time, and the key material is dropped when the function returns.
"""
from __future__ import annotations

import uuid

import jwt

from lti_client.registration import PlatformRegistration

# Canvas rejects an `iat` more than 30 s in the future and older than 300 s (§1.2, jwt_validator.rb):
# backdating 5 s absorbs small clock skew, and `exp` stays well inside Canvas's window.
IAT_BACKDATE_S = 5
LIFETIME_S = 120


class KeyUnreadable(Exception):
    """The private key file could not be read or used (the message never contains key material)."""


def build_client_assertion(reg: PlatformRegistration, now: float) -> str:
    """A freshly signed client assertion for `reg` at time `now` (epoch seconds)."""
    issued = int(now) - IAT_BACKDATE_S
    claims = {
        "iss": reg.client_id,
        "sub": reg.client_id,
        "aud": reg.token_audience,
        "iat": issued,
        "exp": int(now) + LIFETIME_S,
        "jti": f"gradesync-{uuid.uuid4()}",
    }
    try:
        key_pem = reg.private_key_file.read_bytes()
    except OSError as exc:
        raise KeyUnreadable(f"private key file unreadable: {reg.private_key_file} ({exc.strerror})") from None
    try:
        return jwt.encode(claims, key_pem, algorithm="RS256", headers={"kid": reg.key_id})
    except Exception as exc:  # noqa: BLE001 — any parse/sign failure; never chain (could echo the key)
        raise KeyUnreadable(f"private key unusable for RS256: {reg.private_key_file} ({type(exc).__name__})") from None
    finally:
        del key_pem
