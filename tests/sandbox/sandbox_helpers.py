"""Helpers for the sandbox server tests: small states built in place, a hand-written tool that signs
assertions with PyJWT (deliberately not lti_client: these tests pin the server on their own)."""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox_lms import urls
from sandbox_lms.server import RunningSandbox
from sandbox_lms.state import (ALL_SCOPES, INSTRUCTOR, LEARNER, TEACHING_ASSISTANT, CourseRecord,
                               LineItemRecord, LmsState, Member, Registration, ResultRecord)

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"


def keypair() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return key, pem


def make_course(context_id: str = "C1", n_extra_items: int = 0, n_extra_learners: int = 0) -> CourseRecord:
    """A course: learners s1–s3 Active, s4 Inactive; instructor t1; TA ta1; item 1 (max 10, published,
    s1 scored 8 by the tool at T0), item 2 (max 100, unpublished); plus extra items/learners for paging."""
    members = [Member(f"s{i}", [LEARNER], name=f"Student {i}") for i in (1, 2, 3)]
    members += [Member("s4", [LEARNER], status="Inactive"), Member("t1", [INSTRUCTOR]),
                Member("ta1", [TEACHING_ASSISTANT])]
    members += [Member(f"x{i}", [LEARNER]) for i in range(n_extra_learners)]
    item1 = LineItemRecord(1, "Quiz 1", 10.0, resource_link_id="rl-1", resource_id="quiz-1", tag="quiz")
    item1.results["s1"] = ResultRecord("s1", 8.0, 10.0, stored_at=T0)
    item2 = LineItemRecord(2, "Essay", 100.0, resource_link_id="rl-2", tag="essay", active=False)
    extra = [LineItemRecord(100 + i, f"Extra {i}", 5.0, resource_link_id=f"rl-x{i}", tag="extra")
             for i in range(n_extra_items)]
    return CourseRecord(context_id, f"Course {context_id}", members=members, line_items=[item1, item2, *extra])


def make_state(public_pem: str, profiles=urls.PROFILES, **course_kw) -> LmsState:
    """One registration per profile, named after it, each with course C1 (and C2)."""
    state = LmsState()
    for p in profiles:
        reg = Registration(name=p, profile=p, client_id=f"{p}-client", issuer=f"https://{p}.example",
                           key_id=f"{p}-kid", public_key_pem=public_pem, type_id=7)
        reg.courses = {"C1": make_course("C1", **course_kw), "C2": make_course("C2")}
        state.registrations[p] = reg
    return state


@dataclass
class Tool:
    """A tiny hand-written LTI tool: signs assertions, fetches tokens, calls services."""
    sandbox: RunningSandbox
    reg: Registration
    key: rsa.RSAPrivateKey
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    @property
    def base(self) -> str:
        return self.sandbox.base_url

    def url(self, what: str, context_id: str = "C1", item_id: int = 1) -> str:
        b, r = self.base, self.reg
        return {"token": urls.token_url(b, r), "line_items": urls.lineitems_url(b, r, context_id),
                "line_item": urls.line_item_url(b, r, context_id, item_id),
                "results": urls.results_url(b, r, context_id, item_id),
                "scores": urls.scores_url(b, r, context_id, item_id),
                "memberships": urls.memberships_url(b, r, context_id)}[what]

    def assertion(self, key: rsa.RSAPrivateKey | None = None, **claims) -> str:
        now = int(time.time())
        aud = urls.token_audience(self.base, self.reg) or urls.token_url(self.base, self.reg)
        body = {"iss": self.reg.client_id, "sub": self.reg.client_id, "aud": aud, "iat": now - 5,
                "exp": now + 60, "jti": uuid.uuid4().hex}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": self.reg.key_id})

    def token_response(self, scopes=ALL_SCOPES, assertion: str | None = None, **kw) -> httpx.Response:
        data = {"grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion or self.assertion(), "scope": " ".join(sorted(scopes))}
        return self.http.post(self.url("token"), data=data, **kw)

    def token(self, scopes=ALL_SCOPES) -> str:
        r = self.token_response(scopes)
        assert r.status_code == 200, r.text
        return r.json()["access_token"]

    def get(self, url: str, token: str | None = None, accept: str | None = None, **kw) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token()}"}
        if accept is not None:
            headers["Accept"] = accept
        return self.http.get(url, headers=headers, **kw)

    def post_score(self, user_id: str, given: float | None, maximum: float | None = 10.0, *,
                   timestamp: datetime | str | None = None, item_id: int = 1, context_id: str = "C1",
                   grading: str = "FullyGraded", token: str | None = None, extra: dict | None = None,
                   content_type: str = SCORE_TYPE) -> httpx.Response:
        ts = timestamp or datetime.now(timezone.utc)
        body = {"userId": user_id, "activityProgress": "Completed", "gradingProgress": grading,
                "timestamp": ts if isinstance(ts, str) else ts.isoformat(timespec="milliseconds")}
        if given is not None:
            body["scoreGiven"] = given
        if maximum is not None:
            body["scoreMaximum"] = maximum
        body.update(extra or {})
        import json
        return self.http.post(self.url("scores", context_id, item_id), content=json.dumps(body),
                              headers={"Authorization": f"Bearer {token or self.token()}",
                                       "Content-Type": content_type})


def past(seconds: float) -> datetime:
    """A time `seconds` ago (UTC)."""
    return datetime.now(timezone.utc) - timedelta(seconds=seconds)
