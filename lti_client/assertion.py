"""The RS256 client assertion of the OAuth2 client-credentials grant (private_key_jwt).

Claims per lti-platform-behavior.md §1.2–1.3: `iss = sub = client_id` (D2L answers invalid_client
otherwise), `aud` = the registration's token audience (the token URL, or D2L's fixed audience),
`iat`, a short `exp`, a unique `jti`, and the `kid` header. The key file is read here, at signing
time, and the key material is dropped when the function returns (only a digest of a key that passed
its check is remembered, `_CHECKED`).
"""
from __future__ import annotations

import hashlib
import uuid

import jwt
from cryptography.hazmat.primitives import serialization

from lti_client.registration import PlatformRegistration

# `iat` 5 s in the past, like pylti1p3's `now - 5` (§1.2): Moodle's php-jwt has no leeway and refuses
# an iat in its future ("Cannot handle token prior to …", §1.5), so a platform clock a few seconds
# behind ours must not reject us; Canvas accepts iat up to 300 s old and 30 s ahead (jwt_validator.rb).
# A short `exp` (pylti1p3: 60 s): the assertion is used once, right away; 120 s leaves room for a slow
# token endpoint while staying far inside Canvas's 300 s iat window. A platform clock more than ~2 min
# ahead refuses it as expired: that is a clock fault the audit reports (CredentialFault.clock).
IAT_BACKDATE_S = 5
LIFETIME_S = 120


# SHA-256 digests of key files whose RSA key check (OpenSSL's, ~40 ms a load) passed in this process: the
# same file is not checked again at every token (issue 13: a batch asks two tokens). A changed file is a
# new digest, checked again. Digests only: no key material is kept.
_CHECKED: set[bytes] = set()


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
    digest = hashlib.sha256(key_pem).digest()
    try:
        key = serialization.load_pem_private_key(key_pem, None, unsafe_skip_rsa_key_validation=digest in _CHECKED)
        signed = jwt.encode(claims, key, algorithm="RS256", headers={"kid": reg.key_id})
    except Exception as exc:  # noqa: BLE001 — any parse/sign failure; never chain (could echo the key)
        raise KeyUnreadable(f"private key unusable for RS256: {reg.private_key_file} ({type(exc).__name__})") from None
    finally:
        del key_pem
    _CHECKED.add(digest)
    return signed
