"""Token endpoint over real HTTP: assertion checks, form encoding, scope policies, expiry, bearer checks."""
from __future__ import annotations

import time

from sandbox_lms import urls
from sandbox_lms.state import (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_NRPS, SCOPE_RESULT_READONLY,
                               SCOPE_SCORE)

LINEITEMS_ACCEPT = "application/vnd.ims.lis.v2.lineitemcontainer+json"


def test_valid_assertion_gets_bearer_token_with_lifetime_and_scope(tool):
    t = tool("canvas")
    r = t.token_response({SCOPE_SCORE, SCOPE_RESULT_READONLY})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and len(body["access_token"]) > 20
    assert set(body["scope"].split()) == {SCOPE_SCORE, SCOPE_RESULT_READONLY}


def test_assertion_signed_by_unknown_key_is_refused(tool, stranger_key):
    canvas, moodle = tool("canvas"), tool("moodle")
    r = canvas.token_response(assertion=canvas.assertion(key=stranger_key[0]))
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_request", "error_description": "JWS signature invalid."}
    r = moodle.token_response(assertion=moodle.assertion(key=stranger_key[0]))
    assert r.status_code == 400 and r.json()["error"] == "Signature verification failed"


def test_sub_of_another_client_is_refused(tool):
    t = tool("spec")
    r = t.token_response(assertion=t.assertion(sub="someone-else", iss="someone-else"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_canvas_audience_must_be_token_url_of_host_called(tool):
    t = tool("canvas")
    r = t.token_response(assertion=t.assertion(aud="https://canvas.example/login/oauth2/token"))
    assert r.status_code == 400 and r.json()["error_description"] == "the 'aud' is invalid"
    # an array containing the token URL is accepted
    r = t.token_response(assertion=t.assertion(aud=["x", urls.token_url(t.base, t.reg)]))
    assert r.status_code == 200


def test_d2l_requires_fixed_audience_not_token_url(tool):
    t = tool("d2l")
    assert t.token_response().status_code == 200                      # aud = api.brightspace.com/auth/token
    r = t.token_response(assertion=t.assertion(aud=urls.token_url(t.base, t.reg)))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert r.json()["error_description"].startswith("Error validating assertion")


def test_d2l_issuer_other_than_client_id_is_invalid_client(tool):
    t = tool("d2l")
    r = t.token_response(assertion=t.assertion(iss="https://tool.example"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"


def test_blackboard_audience_is_token_url(tool):
    t = tool("blackboard")
    assert t.token_response().status_code == 200
    r = t.token_response(assertion=t.assertion(aud=urls.D2L_AUDIENCE))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_moodle_does_not_check_audience_or_issuer(tool):
    t = tool("moodle")
    r = t.token_response(assertion=t.assertion(aud="https://anything.example", iss="whatever"))
    assert r.status_code == 200


def test_canvas_iat_window_300s_old_30s_future(tool):
    t = tool("canvas")
    now = int(time.time())
    assert t.token_response(assertion=t.assertion(iat=now - 290)).status_code == 200
    old = t.token_response(assertion=t.assertion(iat=now - 310))
    assert old.status_code == 400 and "iat" in old.json()["error_description"]
    assert t.token_response(assertion=t.assertion(iat=now + 20)).status_code == 200
    future = t.token_response(assertion=t.assertion(iat=now + 45))
    assert future.status_code == 400 and "iat" in future.json()["error_description"]


def test_expired_assertion_is_refused(tool):
    t = tool("canvas")
    r = t.token_response(assertion=t.assertion(exp=int(time.time()) - 1))
    assert r.status_code == 400 and r.json()["error_description"] == "the JWT has expired"


def test_canvas_requires_jti_but_does_not_check_replay(tool):
    t = tool("canvas")
    r = t.token_response(assertion=t.assertion(jti=None))
    assert r.status_code == 400 and "jti" in r.json()["error_description"]
    same = t.assertion()
    assert t.token_response(assertion=same).status_code == 200
    assert t.token_response(assertion=same).status_code == 200       # §1.2 skip_jti_check


def test_token_request_must_be_form_encoded(tool):
    canvas, moodle = tool("canvas"), tool("moodle")
    payload = {"grant_type": "client_credentials",
               "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
               "client_assertion": canvas.assertion(), "scope": SCOPE_SCORE}
    r = canvas.http.post(canvas.url("token"), json=payload)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    # Moodle compares the Content-Type string exactly: a charset parameter is refused, Canvas takes it
    import urllib.parse
    body = urllib.parse.urlencode({**payload, "client_assertion": moodle.assertion()})
    r = moodle.http.post(moodle.url("token"), content=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    assert r.status_code == 400 and r.json() == {"error": "invalid_request"}
    body = urllib.parse.urlencode(payload)
    r = canvas.http.post(canvas.url("token"), content=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    assert r.status_code == 200


def test_missing_scope_field_and_wrong_grant_type(tool):
    t = tool("moodle")
    r = t.token_response(scopes=set())
    assert r.status_code == 400 and r.json() == {"error": "invalid_request"}
    data = {"grant_type": "password",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": t.assertion(), "scope": SCOPE_SCORE}
    r = t.http.post(t.url("token"), data=data)
    assert r.status_code == 400 and r.json() == {"error": "unsupported_grant_type"}


def test_canvas_refuses_any_ungranted_scope_and_lists_it(sandbox, tool):
    t = tool("canvas")
    sandbox.control.set_score_scope("canvas", granted=False)
    r = t.token_response({SCOPE_SCORE, SCOPE_RESULT_READONLY})
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "invalid_scope"
    assert "The following scopes were requested, but not granted" in body["error_description"]
    assert SCOPE_SCORE in body["error_description"] and SCOPE_RESULT_READONLY not in body["error_description"]
    assert t.token_response({SCOPE_RESULT_READONLY}).status_code == 200
    sandbox.control.set_score_scope("canvas", granted=True)
    assert t.token_response({SCOPE_SCORE, SCOPE_RESULT_READONLY}).status_code == 200


def test_moodle_grants_the_subset_and_echoes_it(sandbox, tool):
    t = tool("moodle")
    sandbox.state.registrations["moodle"].granted_scopes = {SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY}
    r = t.token_response({SCOPE_SCORE, SCOPE_RESULT_READONLY, SCOPE_NRPS})
    assert r.status_code == 200
    assert r.json()["scope"] == SCOPE_RESULT_READONLY
    r = t.token_response({SCOPE_SCORE})
    assert r.status_code == 400 and r.json() == {"error": "invalid_scope"}


def test_revoking_score_scope_also_disarms_existing_tokens(sandbox, tool):
    t = tool("spec")
    token = t.token()
    assert t.post_score("s2", 5, token=token).status_code == 204
    sandbox.control.set_score_scope("spec", granted=False)
    assert t.post_score("s2", 6, token=token).status_code == 403
    r = t.token_response({SCOPE_SCORE, SCOPE_RESULT_READONLY})
    assert r.status_code == 200 and r.json()["scope"] == SCOPE_RESULT_READONLY


def test_bearer_token_expiry_is_honoured(sandbox, tool):
    sandbox.control.set_faults("canvas", token_lifetime_s=60)
    t = tool("canvas")
    r = t.token_response()
    assert r.json()["expires_in"] == 60
    token = r.json()["access_token"]
    assert t.get(t.url("line_items"), token).status_code == 200
    sandbox.control.advance_clock(61)
    r = t.get(t.url("line_items"), token)
    assert r.status_code == 401
    assert r.json() == {"errors": {"type": "unauthorized", "message": "Access token expired"}}
    # the client assertion is judged on the platform clock too: a fresh one is now "from the past"
    assert t.token_response().status_code == 400


def test_bearer_checks_missing_unknown_and_foreign_tokens(tool):
    canvas, spec = tool("canvas"), tool("spec")
    assert canvas.http.get(canvas.url("line_items")).status_code == 401
    assert canvas.get(canvas.url("line_items"), "not-a-token").status_code == 401
    foreign = spec.token()
    assert canvas.get(canvas.url("line_items"), foreign).status_code == 401


def test_scopes_are_enforced_per_endpoint(tool):
    canvas, moodle = tool("canvas"), tool("moodle")
    results_only = canvas.token({SCOPE_RESULT_READONLY})
    assert canvas.get(canvas.url("results"), results_only).status_code == 200
    assert canvas.get(canvas.url("line_items"), results_only).status_code == 401
    assert canvas.get(canvas.url("memberships"), results_only).status_code == 401
    assert canvas.post_score("s2", 5, token=results_only).status_code == 401
    readonly = canvas.token({SCOPE_LINEITEM_READONLY})
    assert canvas.get(canvas.url("line_items"), readonly).status_code == 200
    r = canvas.http.post(canvas.url("line_items"), json={"label": "New", "scoreMaximum": 5},
                         headers={"Authorization": f"Bearer {readonly}"})
    assert r.status_code == 401
    # Moodle wants lineitem.readonly explicitly for GETs; lineitem alone is not enough (§1.6)
    full_only = moodle.token({SCOPE_LINEITEM})
    assert moodle.get(moodle.url("line_items"), full_only, accept=LINEITEMS_ACCEPT).status_code == 401
    ro = moodle.token({SCOPE_LINEITEM_READONLY})
    assert moodle.get(moodle.url("line_items"), ro, accept=LINEITEMS_ACCEPT).status_code == 200
