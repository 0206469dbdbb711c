"""Token errors as data (issue 10 §3): only a refused score scope means "grades not accepted"; a refused
key, client_id, clock or audience is "credentials rejected" (with the fix to name); 5xx/timeouts are
"unavailable". Each vendor's refusal texts as lti-platform-behavior.md §1.5, §1.3 and §7 #23 give them."""
from __future__ import annotations

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lti_fakes import FakeLms, json_response
from sandbox_world import served_world

from lti_client import SCOPE_SCORE, ErrorKind, LtiError
from lti_client.types import CredentialFault, TokenRefusal
from lti_client.vendors import classify_token_refusal

pytestmark = pytest.mark.anyio

SCOPE_REFUSED, REJECTED = TokenRefusal.scope_refused, TokenRefusal.credentials_rejected

# (vendor, status, body, refusal, fault) — the platform's words for each way a token request fails.
TOKEN_ANSWERS = [
    # Canvas §1.5/§1.6: invalid_scope for a scope not on the developer key.
    ("canvas", 400, {"error": "invalid_scope",
                     "error_description": f"The following scopes were requested, but not granted: {SCOPE_SCORE}"},
     SCOPE_REFUSED, None),
    # Canvas §1.5: an unknown sub reads "JWS signature invalid." (400 invalid_request), like a bad signature.
    ("canvas", 400, {"error": "invalid_request", "error_description": "JWS signature invalid."},
     REJECTED, CredentialFault.key_or_client),
    ("canvas", 400, {"error": "invalid_request", "error_description": "the JWT has expired"},
     REJECTED, CredentialFault.clock),
    ("canvas", 400, {"error": "invalid_request", "error_description": "the 'iat' must be less than 300 seconds old"},
     REJECTED, CredentialFault.clock),
    ("canvas", 400, {"error": "invalid_request", "error_description": "the 'aud' is invalid"},
     REJECTED, CredentialFault.audience),
    ("canvas", 401, {"error": "invalid_client", "error_description": "unknown client"}, REJECTED, CredentialFault.client),
    ("canvas", 400, {"error": "invalid_request",
                     "error_description": "assertion method not supported for this grant_type"},
     REJECTED, CredentialFault.request),
    # Moodle §1.5: every failure 400 {"error": ...}; the newer token.php puts php-jwt's message there.
    ("moodle", 400, {"error": "invalid_scope"}, SCOPE_REFUSED, None),
    ("moodle", 400, {"error": "invalid_client"}, REJECTED, CredentialFault.key_or_client),
    ("moodle", 400, {"error": "Signature verification failed"}, REJECTED, CredentialFault.key),
    ("moodle", 400, {"error": "Expired token"}, REJECTED, CredentialFault.clock),
    ("moodle", 400, {"error": "Cannot handle token prior to 2026-11-30T02:00:00+0000"}, REJECTED, CredentialFault.clock),
    ("moodle", 400, {"error": "invalid_request"}, REJECTED, CredentialFault.request),
    # D2L §1.3/§7 #23: invalid_client (iss ≠ client_id, key not in the JWKS), invalid_grant "Error validating assertion".
    ("d2l", 400, {"error": "invalid_client"}, REJECTED, CredentialFault.key_or_client),
    ("d2l", 400, {"error": "invalid_grant", "error_description": "Error validating assertion: the token is expired"},
     REJECTED, CredentialFault.clock),
    ("d2l", 400, {"error": "invalid_grant", "error_description": "Error validating assertion: no key matches kid 'k2'"},
     REJECTED, CredentialFault.key),
    ("d2l", 400, {"error": "invalid_grant", "error_description": "Error validating assertion"},
     REJECTED, CredentialFault.unknown),
    ("d2l", 400, {"error": "invalid_scope"}, SCOPE_REFUSED, None),
    # Blackboard / a spec platform: the RFC 6749 codes alone.
    ("blackboard", 401, {"error": "invalid_client"}, REJECTED, CredentialFault.client),
    ("generic", 400, {"error": "unsupported_grant_type"}, REJECTED, CredentialFault.request),
    ("generic", 400, {"error": "invalid_grant", "error_description": "client associated with another tenant"},
     REJECTED, CredentialFault.unknown),       # "associated" is not an iat problem
]


@pytest.mark.parametrize("vendor, status, body, refusal, fault", TOKEN_ANSWERS)
async def test_score_token_refusal_is_classified_per_vendor(make_reg, make_client, vendor, status, body,
                                                            refusal, fault):
    lms = FakeLms(vendor)
    lms.token_policy = lambda scopes: json_response(body, status)
    async with make_client(make_reg(vendor), lms) as client:
        grant = await client.score_grant()
    assert grant.error is not None and grant.error.kind is ErrorKind.auth and grant.error.status == status
    assert grant.error.error_type == body["error"]
    assert (grant.error.refusal, grant.error.credential_fault) == (refusal, fault)
    assert grant.refusal_for(SCOPE_SCORE) is refusal
    # The same table is public, for a refusal read from a log.
    assert classify_token_refusal(vendor, grant.error.error_type, grant.error.message) == (refusal, fault)


async def test_rejected_credentials_are_remembered_for_every_scope_set(make_reg, make_client):
    lms = FakeLms("canvas")
    lms.token_policy = lambda scopes: json_response(
        {"error": "invalid_request", "error_description": "JWS signature invalid."}, 400)
    async with make_client(make_reg("canvas"), lms) as client:
        grant = await client.score_grant()
        with pytest.raises(LtiError) as info:
            await client.read_grant()
    assert info.value.info == grant.error
    assert info.value.info.refusal is REJECTED and info.value.info.credential_fault is CredentialFault.key_or_client
    assert "rotated" in info.value.info.credential_fault.fix
    # A rotated key is refused for every scope set: asking for the read scopes too would only cost a request.
    assert len(lms.token_calls()) == 1


async def test_refused_score_scope_does_not_stop_reads(make_reg, make_client):
    lms = FakeLms("canvas")
    lms.token_policy = lambda scopes: json_response({"error": "invalid_scope"}, 400) if SCOPE_SCORE in scopes else None
    async with make_client(make_reg("canvas"), lms) as client:
        assert (await client.score_grant()).refusal_for(SCOPE_SCORE) is SCOPE_REFUSED
        read = await client.read_grant()
    assert read.error is None and read.refusal_for(SCOPE_SCORE) is SCOPE_REFUSED   # not asked for: not granted
    assert len(lms.token_calls()) == 2


async def test_grant_without_the_score_scope_is_scope_refused_and_a_full_grant_is_none(make_reg, make_client):
    lms = FakeLms("moodle")
    lms.echo_scope = False
    lms.route("POST", "/mod/lti/token.php", json_response(
        {"access_token": "moodle-token-1234", "token_type": "Bearer", "expires_in": 3600,
         "scope": "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"}))
    async with make_client(make_reg("moodle"), lms) as client:
        grant = await client.score_grant()
    assert grant.error is None and grant.refusal_for(SCOPE_SCORE) is SCOPE_REFUSED

    lms = FakeLms("moodle")
    async with make_client(make_reg("moodle"), lms) as client:
        assert (await client.score_grant()).refusal_for(SCOPE_SCORE) is None


@pytest.mark.parametrize("failure", [
    json_response({"message": "Service Unavailable"}, 503),
    httpx.ConnectTimeout("timed out"),
    httpx.Response(403, text="403 Forbidden (Rate Limit Exceeded)"),     # Canvas throttle (§6.1)
])
async def test_unreachable_token_endpoint_is_unavailable_and_raised(make_reg, make_client, failure):
    lms = FakeLms("canvas")

    def token(request):
        if isinstance(failure, Exception):
            raise failure
        return failure
    lms.route("POST", "/login/oauth2/token", token)
    async with make_client(make_reg("canvas"), lms, max_retries=1) as client:
        with pytest.raises(LtiError) as info:
            await client.score_grant()
        # Not remembered: the next call asks again (it may work then).
        with pytest.raises(LtiError):
            await client.score_grant()
    assert info.value.info.refusal is TokenRefusal.unavailable
    assert info.value.kind in (ErrorKind.transient, ErrorKind.throttled)
    assert len(lms.token_calls()) == 4                                   # 2 calls × (1 try + 1 retry)


async def test_unreadable_key_is_credentials_rejected_naming_the_key_file(make_reg, make_client, key_file):
    reg = make_reg("canvas")
    key_file.write_text("not a key")
    lms = FakeLms("canvas")
    async with make_client(reg, lms) as client:
        grant = await client.score_grant()
        with pytest.raises(LtiError) as info:
            await client.read_grant()
    assert grant.error.refusal is REJECTED and grant.error.credential_fault is CredentialFault.key_file
    assert info.value.info == grant.error and lms.requests == []


# ---- the same against the sandbox's token endpoint over real HTTP (Canvas and Moodle profiles) ----------
REGS = {"canvas": "canvas-main", "moodle": "moodle-main"}


@pytest.fixture
def sw(tmp_path):
    with served_world(tmp_path, seed=1) as served:
        yield served


@pytest.mark.timeout(60)
@pytest.mark.parametrize("profile, fault", [("canvas", CredentialFault.key_or_client), ("moodle", CredentialFault.key)])
async def test_rotated_key_is_credentials_rejected_with_one_token_request(sw, profile, fault):
    name = REGS[profile]
    # The platform now holds another public key: the tool's key was rotated on one side only.
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sw.state_reg(name).public_key_pem = other.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    async with sw.client(name) as client:
        grant = await client.score_grant()
        with pytest.raises(LtiError) as exc:
            await client.read_grant()
    assert grant.refusal_for(SCOPE_SCORE) is REJECTED and grant.error.credential_fault is fault
    assert exc.value.info == grant.error
    assert sw.server_counts(name) == {"token": 1}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("profile", ["canvas", "moodle"])
async def test_platform_clock_ten_minutes_ahead_is_a_clock_fault(sw, profile):
    name = REGS[profile]
    sw.sandbox.control.advance_clock(600)
    async with sw.client(name) as client:
        grant = await client.score_grant()
    assert grant.refusal_for(SCOPE_SCORE) is REJECTED
    assert grant.error.credential_fault is CredentialFault.clock and "clock" in grant.error.credential_fault.fix


@pytest.mark.timeout(60)
async def test_iat_backdating_absorbs_a_platform_clock_a_few_seconds_behind(sw):
    # Moodle's php-jwt has no leeway (iat in its future → "Cannot handle token prior to …", §1.2/§1.5):
    # the assertion's iat, 5 s in the past like pylti1p3's, is accepted by a platform 3 s behind.
    sw.sandbox.control.advance_clock(-3)
    async with sw.client("moodle-main") as client:
        assert (await client.score_grant()).refusal_for(SCOPE_SCORE) is None
        assert (await client.read_grant()).error is None
