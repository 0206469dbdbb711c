"""Token service: assertion, caching, scope grants, refusals, 401 refresh-once, secrecy."""
from __future__ import annotations

from datetime import datetime, timezone

import jwt
import pytest
from lti_fakes import HOST, FakeLms, json_response

from lti_client import (READ_SCOPES, SCOPE_LINEITEM_READONLY, SCOPE_NRPS, SCOPE_RESULT_READONLY,
                        SCOPE_SCORE, ErrorKind, LtiError, Score)
from lti_client.assertion import LIFETIME_S

pytestmark = pytest.mark.anyio

LINEITEMS = "/api/lti/courses/7/line_items"
LINEITEMS_URL = f"https://{HOST}{LINEITEMS}"


def _lineitems_ok(lms: FakeLms) -> None:
    lms.route("GET", LINEITEMS, lambda req: json_response([{"id": LINEITEMS_URL + "/1", "label": "A",
                                                            "scoreMaximum": 10}]))


async def test_assertion_claims_and_signature_verify_with_public_key(make_reg, make_client, public_pem, fake_time):
    reg = make_reg("canvas")
    lms = FakeLms("canvas")
    async with make_client(reg, lms) as client:
        await client.read_grant()
        await client.score_grant()
    forms = lms.token_forms()
    assert len(forms) == 2
    req = lms.token_calls()[0]
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    assert forms[0]["grant_type"] == "client_credentials"
    assert forms[0]["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    jtis = set()
    for form in forms:
        token = form["client_assertion"]
        header = jwt.get_unverified_header(token)
        assert header["alg"] == "RS256" and header["kid"] == "kid-1"
        claims = jwt.decode(token, public_pem, algorithms=["RS256"], audience=reg.token_url,
                            options={"verify_exp": False, "verify_iat": False})
        assert claims["iss"] == claims["sub"] == "client-123"
        assert claims["aud"] == reg.token_url
        # Canvas: iat no more than 30 s in the future, no older than 300 s; exp short.
        assert fake_time.now - 300 < claims["iat"] <= fake_time.now + 30
        assert claims["exp"] > fake_time.now and claims["exp"] - claims["iat"] <= 300
        assert claims["exp"] - fake_time.now == LIFETIME_S
        jtis.add(claims["jti"])
    assert len(jtis) == 2, "every assertion carries a unique jti"


async def test_d2l_assertion_uses_the_fixed_audience_not_the_token_url(make_reg, make_client, public_pem):
    reg = make_reg("d2l", audience="https://api.brightspace.com/auth/token")
    lms = FakeLms("d2l")
    async with make_client(reg, lms) as client:
        await client.read_grant()
    token = lms.token_forms()[0]["client_assertion"]
    claims = jwt.decode(token, public_pem, algorithms=["RS256"], audience="https://api.brightspace.com/auth/token",
                        options={"verify_exp": False, "verify_iat": False})
    assert claims["aud"] == "https://api.brightspace.com/auth/token" != reg.token_url


async def test_read_and_score_scopes_are_requested_separately_with_lineitem_readonly(make_reg, make_client):
    lms = FakeLms("moodle")
    async with make_client(make_reg("moodle"), lms) as client:
        await client.read_grant()
        await client.score_grant()
    read_scope, score_scope = (set(f["scope"].split()) for f in lms.token_forms())
    assert read_scope == set(READ_SCOPES) and SCOPE_LINEITEM_READONLY in read_scope
    assert score_scope == {SCOPE_SCORE}


async def test_token_is_cached_until_shortly_before_expiry(make_reg, make_client, fake_time):
    lms = FakeLms("canvas")
    _lineitems_ok(lms)
    async with make_client(make_reg("canvas"), lms) as client:
        await client.list_line_items(LINEITEMS_URL)
        await client.list_line_items(LINEITEMS_URL)
        assert len(lms.token_calls()) == 1
        fake_time.now += 3600 - 61           # still more than the 60 s leeway left
        await client.list_line_items(LINEITEMS_URL)
        assert len(lms.token_calls()) == 1
        fake_time.now += 2                   # inside the leeway: refresh before the platform says 401
        await client.list_line_items(LINEITEMS_URL)
        assert len(lms.token_calls()) == 2
    auths = [r.headers["authorization"] for r in lms.calls(LINEITEMS)]
    assert auths[:3] == [f"Bearer {lms.tokens_issued[0]}"] * 3 and auths[3] == f"Bearer {lms.tokens_issued[1]}"


async def test_moodle_scope_subset_is_reported_and_ungranted_service_not_called(make_reg, make_client):
    lms = FakeLms("moodle")
    # Moodle grants the intersection silently and lists only what it granted (§1.6).
    lms.echo_scope = False
    lms.route("POST", "/mod/lti/token.php", lambda req: json_response(
        {"access_token": "moodle-token-abcdef", "token_type": "Bearer", "expires_in": 3600,
         "scope": f"{SCOPE_LINEITEM_READONLY} {SCOPE_RESULT_READONLY}"}))
    url = f"https://{HOST}/mod/lti/services.php/CourseSection/2/bindings/3/memberships"
    async with make_client(make_reg("moodle"), lms) as client:
        grant = await client.read_grant()
        assert grant.requested == READ_SCOPES
        assert grant.granted == {SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY}
        assert not grant.has(SCOPE_NRPS) and grant.error is None
        with pytest.raises(LtiError) as info:
            await client.list_members(url)
    assert info.value.kind is ErrorKind.auth and info.value.error_type == "scope_not_granted"
    assert [r.url.path for r in lms.requests] == ["/mod/lti/token.php"]


async def test_response_without_scope_means_everything_requested_was_granted(make_reg, make_client):
    lms = FakeLms("generic")
    lms.echo_scope = False
    async with make_client(make_reg("generic"), lms) as client:
        assert (await client.read_grant()).granted == READ_SCOPES
        assert (await client.score_grant()).granted == {SCOPE_SCORE}


async def test_canvas_invalid_scope_on_score_is_data_and_reads_still_work(make_reg, make_client):
    lms = FakeLms("canvas")
    lms.token_policy = lambda scopes: json_response(
        {"error": "invalid_scope",
         "error_description": f"The following scopes were requested, but not granted: {SCOPE_SCORE}"}, 400) \
        if SCOPE_SCORE in scopes else None
    _lineitems_ok(lms)
    async with make_client(make_reg("canvas"), lms) as client:
        grant = await client.score_grant()
        assert grant.granted == frozenset() and grant.error is not None
        assert grant.error.kind is ErrorKind.auth and grant.error.error_type == "invalid_scope"
        assert grant.error.status == 400 and "not granted" in grant.error.message
        assert (await client.read_grant()).granted == READ_SCOPES
        assert len(await client.list_line_items(LINEITEMS_URL)) == 1
        # The refusal is remembered: neither a second score_grant nor post_score asks again.
        assert (await client.score_grant()).error == grant.error
        score = Score(user_id="u1", score_given=1, score_maximum=1, timestamp=datetime(2026, 1, 1, tzinfo=timezone.utc))
        with pytest.raises(LtiError) as info:
            await client.post_score(LINEITEMS_URL + "/1", score)
        assert info.value.kind is ErrorKind.auth
    assert client.stats.requests == {"token": 2, "line_items": 1}


async def test_read_grant_refusal_raises_auth(make_reg, make_client):
    lms = FakeLms("canvas")
    lms.token_policy = lambda scopes: json_response({"error": "invalid_client", "error_description": "unknown client"}, 401)
    async with make_client(make_reg("canvas"), lms) as client:
        with pytest.raises(LtiError) as info:
            await client.read_grant()
        with pytest.raises(LtiError):
            await client.list_line_items(LINEITEMS_URL)
    assert info.value.kind is ErrorKind.auth and info.value.status == 401
    assert info.value.error_type == "invalid_client"
    assert len(lms.token_calls()) == 1


async def test_token_endpoint_5xx_is_transient_not_a_refusal(make_reg, make_client):
    lms = FakeLms("canvas")
    lms.token_policy = lambda scopes: json_response({"message": "down"}, 503)
    async with make_client(make_reg("canvas"), lms, max_retries=2) as client:
        with pytest.raises(LtiError) as info:
            await client.score_grant()
    assert info.value.kind is ErrorKind.transient and info.value.status == 503
    assert len(lms.token_calls()) == 3


async def test_401_refreshes_the_token_once_and_retries_once(make_reg, make_client):
    lms = FakeLms("canvas")
    expired = json_response({"errors": {"type": "unauthorized", "message": "Access token expired"}}, 401)
    lms.route("GET", LINEITEMS, expired, json_response([]))
    async with make_client(make_reg("canvas"), lms) as client:
        assert await client.list_line_items(LINEITEMS_URL) == []
    gets = lms.calls(LINEITEMS)
    assert len(gets) == 2 and len(lms.token_calls()) == 2
    assert gets[0].headers["authorization"] != gets[1].headers["authorization"]
    assert gets[1].headers["authorization"] == f"Bearer {lms.tokens_issued[1]}"


async def test_second_401_is_course_unreachable_after_exactly_one_refresh(make_reg, make_client):
    lms = FakeLms("canvas")
    lms.route("GET", LINEITEMS, lambda req: json_response(
        {"errors": {"type": "unauthorized", "message": "Access Token not linked to a Tool associated with this Context"}}, 401))
    async with make_client(make_reg("canvas"), lms) as client:
        with pytest.raises(LtiError) as info:
            await client.list_line_items(LINEITEMS_URL)
    assert info.value.kind is ErrorKind.course_unreachable and info.value.status == 401
    assert len(lms.calls(LINEITEMS)) == 2 and len(lms.token_calls()) == 2


async def test_tokens_never_appear_in_errors_even_when_the_platform_echoes_them(make_reg, make_client, caplog):
    lms = FakeLms("canvas")
    lms.route("GET", LINEITEMS, lambda req: json_response(
        {"errors": {"type": "bad", "message": f"rejected header {req.headers['authorization']}"}}, 400))
    caplog.set_level("DEBUG", logger="lti_client")
    async with make_client(make_reg("canvas"), lms) as client:
        with pytest.raises(LtiError) as info:
            await client.list_line_items(LINEITEMS_URL)
    token = lms.tokens_issued[0]
    assert token not in str(info.value) and token not in repr(info.value.info)
    assert "[redacted]" in info.value.message
    assert token not in caplog.text
    assert "s3cr3t" not in str(client.stats)


async def test_unreadable_key_is_an_auth_error_and_no_request_is_counted(make_reg, make_client, key_file):
    reg = make_reg("canvas")
    key_file.write_text("not a key")
    lms = FakeLms("canvas")
    async with make_client(reg, lms) as client:
        grant = await client.score_grant()
    assert grant.error is not None and grant.error.kind is ErrorKind.auth
    assert grant.error.error_type == "key_unreadable" and "not a key" not in grant.error.message
    assert lms.requests == [] and client.stats.total == 0


def test_a_key_file_is_checked_once_and_again_when_it_changes(tmp_path):
    # OpenSSL's RSA key check costs ~40 ms per load: done once per key file content in a process (only a
    # digest is remembered); the signatures verify with the right public key before and after a rotation.
    import hashlib

    import jwt as pyjwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from lti_client import assertion
    from lti_client.registration import PlatformRegistration

    def new_key():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        return key, pem

    key_file = tmp_path / "tool.pem"
    reg = None
    for _ in range(2):                                  # a rotation: new content in the same file
        key, pem = new_key()
        key_file.write_bytes(pem)
        reg = reg or PlatformRegistration(
            name="t", vendor="canvas", issuer="https://lms.example.edu", client_id="c1",
            token_url="https://lms.example.edu/login/oauth2/token",
            private_key_file=key_file, key_id="k1", allowed_hosts=["lms.example.edu"])
        for _ in range(2):
            token = assertion.build_client_assertion(reg, 1_700_000_000)
            claims = pyjwt.decode(token, key.public_key(), algorithms=["RS256"], audience=reg.token_audience,
                                  options={"verify_exp": False, "verify_iat": False})
            assert claims["iss"] == "c1"
        assert hashlib.sha256(pem).digest() in assertion._CHECKED
        assert pem not in assertion._CHECKED
