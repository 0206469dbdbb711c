"""The sandbox's Moodle profile answers like a real Moodle 5.1+ (Build 20251017): every recorded exchange
(tests/fixtures/moodle-5.1, made by tests/real/moodle/record.py) is sent again, byte for byte, to a sandbox
seeded with the recorded world (same course, item, user and type ids, same stored grades and times), over
real HTTP on loopback; status, reason phrase, Content-Type, Link header shape and body shape must match.

Not compared, on purpose: the HTTP version (Moodle's `response::send()` writes HTTP/1.0, uvicorn 1.1), the
values inside bodies beyond their shape (names, scores, URLs — the replay tests check what the client does
with them), and whitespace inside JSON (Moodle pretty-prints)."""
from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox_lms.profiles import moodle as moodle_profile
from sandbox_lms.server import REASON_HEADER, start_sandbox
from sandbox_lms.state import (INSTRUCTOR, LEARNER, SCOPE_NRPS, TEACHING_ASSISTANT, CourseRecord, LineItemRecord,
                               LmsState, Member, Registration, ResultRecord)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "moodle-5.1"
BUILD = json.loads((FIXTURES / "build.json").read_text(encoding="utf-8"))
WORLD = BUILD["world"]
RECORDINGS = sorted(p.stem for p in FIXTURES.glob("*.json") if p.stem != "build")
ITEM_ID = re.compile(r"/lineitems/(\d+)/lineitem")
LINK = re.compile(r"<([^>]*)>;\s*rel=([\"“])(\w+)[\"”]")


def recording(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def body_json(name: str):
    return json.loads(recording(name)["response"]["body"])


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def seeded_state(public_pem: str) -> LmsState:
    """The recorded world as it stood before the first recorded request (after world.py's planting)."""
    users, roles = WORLD["users"], {}
    for key in users:
        roles[key] = [INSTRUCTOR] if key == "t1" else [TEACHING_ASSISTANT] if key == "ta1" else [LEARNER]
    named = {m["user_id"]: m for m in body_json("memberships_all")["members"]}

    def member(key: str, status: str = "Active") -> Member:
        uid = str(users[key])
        info = named.get(uid, {})
        return Member(uid, roles[key], status=status, name=info.get("name", key), email=info.get("email"),
                      given_name=info.get("given_name"), family_name=info.get("family_name"))

    items = []
    first_post = _ts(recording("score_accepted")["request"]["json"]["timestamp"])
    planted_rows = {o["id"]: [] for o in body_json("lineitems_all")}
    for name in ("results_quiz", "results_essay_after_rescale", "results_locked_item"):
        for row in body_json(name):
            if _ts(row["timestamp"]) < first_post.replace(microsecond=0):     # planted before recording began
                planted_rows[row["scoreOf"]].append(row)
    overridden = str(users["s4"])                          # world.py: teacher override on the quiz
    lab_rlid = str(WORLD["activities"]["lab"]["instance"])
    for li in body_json("lineitems_all"):
        item = LineItemRecord(int(ITEM_ID.search(li["id"]).group(1)), li["label"], float(li["scoreMaximum"]),
                              resource_link_id=li["resourceLinkId"], active=li["resourceLinkId"] != lab_rlid)
        for row in planted_rows[li["id"]]:
            item.results[row["userId"]] = ResultRecord(
                row["userId"], float(row["resultScore"]), float(row["resultMaximum"]), stored_at=_ts(row["timestamp"]),
                by_tool=row["userId"] != overridden)
        items.append(item)
    alg = CourseRecord(str(WORLD["courses"]["alg"]["id"]), "Algebra", line_items=items,
                       members=[member(k) for k in ("s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "t1", "ta1")]
                       + [member("s10", "Inactive")])          # suspended: absent from NRPS, still graded
    hist = CourseRecord(str(WORLD["courses"]["hist"]["id"]), "History", members=[member("s1"), member("t1")])
    state = LmsState()
    main = Registration(name="moodle", profile="moodle", client_id="conformance-main", issuer="https://moodle.test",
                        key_id="k", public_key_pem=public_pem, type_id=WORLD["types"]["main"]["id"])
    main.courses = {alg.context_id: alg, hist.context_id: hist}            # chem was deleted
    nosync = Registration(name="moodle-nosync", profile="moodle", client_id="conformance-nosync",
                          issuer="https://moodle.test", key_id="k", public_key_pem=public_pem,
                          type_id=WORLD["types"]["nosync"]["id"], granted_scopes={SCOPE_NRPS})  # grade sync off
    nosync.courses = {hist.context_id: hist}
    state.registrations = {"moodle": main, "moodle-nosync": nosync}
    return state


class Sender:
    """Sends a recording's request to the sandbox: same path and query below the registration's prefix,
    same headers that matter, same body bytes; tokens and assertions are the sandbox's own."""

    def __init__(self, base: str, state: LmsState, key: rsa.RSAPrivateKey) -> None:
        self.base, self.state, self.key = base, state, key
        self.http = httpx.Client(timeout=30)
        self.tokens: dict[tuple[str, str], str] = {}

    def _reg(self, name: str) -> Registration:
        return self.state.registrations["moodle-nosync" if "nosync" in name else "moodle"]

    def url(self, recorded: str, reg: Registration) -> str:
        return recorded.replace(BUILD["wwwroot"], f"{self.base}/{reg.name}", 1)

    def assertion(self, reg: Registration, key: rsa.RSAPrivateKey | None = None, client_id: str | None = None) -> str:
        now = int(time.time())
        cid = client_id or reg.client_id
        return jwt.encode({"iss": cid, "sub": cid, "aud": "token", "iat": now, "exp": now + 300,
                           "jti": uuid.uuid4().hex}, key or self.key, algorithm="RS256")

    def token(self, reg: Registration, scope: str) -> str:
        if (reg.name, scope) not in self.tokens:
            r = self._token_request(reg, scope, self.assertion(reg))
            assert r.status_code == 200, r.text
            self.tokens[(reg.name, scope)] = r.json()["access_token"]
        return self.tokens[(reg.name, scope)]

    def _token_request(self, reg: Registration, scope: str, assertion: str) -> httpx.Response:
        form = {"grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion, "scope": scope}
        return self.http.post(f"{self.base}/{reg.name}/mod/lti/token.php", data=form)

    def send(self, name: str) -> httpx.Response:
        rec = recording(name)
        req, reg = rec["request"], self._reg(name)
        if "form" in req:                                       # token.php
            assertion = self.assertion(reg)
            if name == "token_wrong_key":
                assertion = self.assertion(reg, key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
            elif name == "token_unknown_client":
                assertion = self.assertion(reg, client_id="no-such-client")
            return self._token_request(reg, req["form"]["scope"], assertion)
        read = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly " \
               "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly " \
               "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
        if req["method"] == "GET":
            headers = {"Authorization": f"Bearer {self.token(reg, read)}"}
            if req["headers"].get("Accept") is not None:
                headers["Accept"] = req["headers"]["Accept"]
            return self.http.get(self.url(req["url"], reg), headers=headers)
        scope = read if name == "score_with_read_token" else "https://purl.imsglobal.org/spec/lti-ags/scope/score"
        return self.http.post(self.url(req["url"], reg), content=json.dumps(req["json"]).encode(),
                              headers={"Authorization": f"Bearer {self.token(reg, scope)}",
                                       "Content-Type": req["headers"]["Content-Type"]})


def shape(value):
    """A JSON value's shape: objects by key, arrays by length and element shapes, scalars by type."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(v) for v in value]
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    return "number" if isinstance(value, (int, float)) else type(value).__name__


def body_shape(text: str):
    if not text.strip():
        return "empty"
    if text.lstrip().lower().startswith("<!doctype html"):
        return "html"
    return shape(json.loads(text))


def link_shape(value: str | None, prefix: str) -> list[tuple]:
    """(rel, quote style, &amp;-escaped?, path below the site, query as a dict) of every Link target."""
    out = []
    for target, quote, rel in LINK.findall(value or ""):
        plain = target.replace("&amp;", "&")
        parts = urlsplit(plain)
        out.append((rel, "typographic" if quote == "“" else "ascii", "&amp;" in target,
                    parts.path.removeprefix(prefix), dict(parse_qsl(parts.query))))
    return out


def content_type(value: str | None) -> str:
    return (value or "").replace(" ", "").lower()


@pytest.fixture(scope="module")
def answers() -> dict[str, tuple[dict, httpx.Response]]:
    """Every recording sent to the sandbox, in the recorded order (later requests see earlier scores)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    state = seeded_state(pem)
    order = sorted(RECORDINGS, key=lambda n: RECORD_ORDER.index(n) if n in RECORD_ORDER else len(RECORD_ORDER))
    with start_sandbox(state) as sandbox:
        sender = Sender(sandbox.base_url, state, key)
        return {name: (recording(name), sender.send(name)) for name in order}


# The order record.py sent them in (score POSTs change what later reads see).
RECORD_ORDER = [
    "token_read_scopes", "token_score_scope", "token_unknown_scope_dropped", "token_nosync_score_scope",
    "token_nosync_read_scopes", "token_wrong_key", "token_unknown_client",
    "lineitems_all", "lineitems_limit2_page1", "lineitems_limit2_page2", "lineitems_limit2_page3",
    "lineitems_link_taken_literally", "lineitems_filter_resource_link_id", "lineitems_filter_both",
    "lineitems_accept_any", "lineitems_accept_json", "lineitems_deleted_course", "lineitems_course_without_tool",
    "results_quiz", "results_quiz_limit2", "results_quiz_user", "results_locked_item", "results_accept_any",
    "memberships_all", "memberships_limit4_page1", "memberships_limit4_page2", "memberships_limit4_page3",
    "memberships_deleted_course",
    "score_accepted", "score_user_not_enrolled", "score_non_editing_teacher", "score_suspended_learner",
    "score_stale_timestamp", "score_same_second", "score_locked_item", "score_over_teacher_override",
    "score_rescaled", "score_wrong_content_type", "score_content_type_with_charset", "score_same_second_other_value",
    "score_missing_field", "score_with_read_token", "results_quiz_after_posts", "results_essay_after_rescale",
]


def test_every_recording_is_covered():
    assert sorted(RECORD_ORDER) == RECORDINGS


def test_the_profile_and_the_server_agree_on_the_reason_header():
    assert moodle_profile.REASON_HEADER.encode() == REASON_HEADER


@pytest.mark.parametrize("name", RECORDINGS)
def test_sandbox_answers_like_real_moodle(answers, name):
    rec, got = answers[name]
    real = rec["response"]
    assert got.status_code == real["status"], got.text[:300]
    assert got.reason_phrase == real["reason"]
    assert content_type(got.headers.get("content-type")) == content_type(real["headers"].get("content-type"))
    assert link_shape(got.headers.get("link"), "/moodle") == link_shape(real["headers"].get("link"), "")
    assert body_shape(got.text) == body_shape(real["body"])
    if name.startswith("token_") and real["status"] == 200:      # which scopes were granted, exactly
        assert set(got.json()["scope"].split()) == set(json.loads(real["body"])["scope"].split())
    if real["body"] and real["body"].lstrip().startswith("{") and "error" in json.loads(real["body"]):
        assert got.json()["error"] == json.loads(real["body"])["error"]
