"""Test doubles for the LTI client tests: a scripted fake LMS behind httpx.MockTransport (no global
patching) and a fake clock whose sleep advances time."""
from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import parse_qs

import httpx

HOST = "lms.example.edu"
TOKEN_PATHS = {"canvas": "/login/oauth2/token", "moodle": "/mod/lti/token.php",
               "d2l": "/core/connect/token", "blackboard": "/api/v1/gateway/oauth2/jwttoken",
               "generic": "/token"}


class FakeTime:
    """A clock plus an async sleep that records the delay and advances the clock (tests run instantly)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


Handler = Callable[[httpx.Request], httpx.Response]


class FakeLms:
    """Scripted LMS: routes by (method, path) to a handler or a queue of responses; records requests.
    The token endpoint grants what is asked (override `token_policy`) with numbered tokens."""

    def __init__(self, vendor: str = "canvas") -> None:
        self.requests: list[httpx.Request] = []
        self._routes: dict[tuple[str, str], Handler | list[httpx.Response]] = {}
        self.tokens_issued: list[str] = []
        self.expires_in: int | None = 3600
        self.token_policy: Callable[[list[str]], httpx.Response | None] = lambda scopes: None
        self.echo_scope = True
        self.route("POST", TOKEN_PATHS[vendor], self._token)
        self.transport = httpx.MockTransport(self.handle)

    def route(self, method: str, path: str, *responses: httpx.Response | Handler) -> None:
        if len(responses) == 1 and callable(responses[0]) and not isinstance(responses[0], httpx.Response):
            self._routes[(method, path)] = responses[0]
        else:
            self._routes[(method, path)] = list(responses)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        target = self._routes.get((request.method, request.url.path))
        if target is None:
            return httpx.Response(599, text=f"unexpected {request.method} {request.url}")
        if callable(target):
            return target(request)
        if not target:
            return httpx.Response(599, text=f"script exhausted for {request.url}")
        return target.pop(0)

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        scopes = form.get("scope", "").split()
        refused = self.token_policy(scopes)
        if refused is not None:
            return refused
        token = f"tok{len(self.tokens_issued) + 1}-s3cr3t-access-token"
        self.tokens_issued.append(token)
        body: dict = {"access_token": token, "token_type": "Bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        if self.echo_scope:
            body["scope"] = " ".join(scopes)
        return httpx.Response(200, json=body)

    def calls(self, path: str, method: str | None = None) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path and (method is None or r.method == method)]

    def token_calls(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path in TOKEN_PATHS.values()]

    def token_forms(self) -> list[dict[str, str]]:
        return [{k: v[0] for k, v in parse_qs(r.content.decode()).items()} for r in self.token_calls()]


def json_response(body, status: int = 200, headers: dict | None = None,
                  content_type: str = "application/json") -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(),
                          headers={"Content-Type": content_type, **(headers or {})})
