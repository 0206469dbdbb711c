"""Real Moodle 5.1 recordings (tests/fixtures/moodle-5.1/, made by tests/real/moodle/record.py) served
back through httpx.MockTransport, reason phrases included (`extensions={"reason_phrase": …}`)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "moodle-5.1"


def load(name: str) -> dict[str, Any]:
    """One recording by name (file stem)."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def build() -> dict[str, Any]:
    """The Moodle build and world ids the recordings came from."""
    return load("build")


def _key(method: str, url: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    parts = urlsplit(url)
    return method, parts.path, tuple(sorted(parse_qsl(parts.query, keep_blank_values=True)))


def as_response(rec: dict[str, Any]) -> httpx.Response:
    """The recorded answer: status, reason phrase, Content-Type, Link and body bytes as Moodle sent them."""
    res = rec["response"]
    headers = [(k, v.encode("utf-8")) for k, v in res["headers"].items()]
    return httpx.Response(res["status"], headers=headers, content=res["body"].encode("utf-8"),
                          extensions={"reason_phrase": res["reason"].encode("utf-8"),
                                      "http_version": res["http_version"].encode("ascii")})


@dataclass
class Replay:
    """Serves the named recordings: GETs by method + path + query (order-free), token POSTs by the scope
    set requested, score POSTs by line item + userId. A request no recording answers fails the test."""
    names: list[str]
    requests: list[httpx.Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.recs = [load(n) for n in self.names]
        self.transport = httpx.MockTransport(self._handle)

    def _match(self, request: httpx.Request) -> dict[str, Any] | None:
        key = _key(request.method, str(request.url))
        for rec in self.recs:
            req = rec["request"]
            if _key(req["method"], req["url"])[:2] != key[:2]:
                continue
            if "form" in req:                      # token.php: the scope set decides
                asked = dict(parse_qsl(request.content.decode()))
                if set(asked.get("scope", "").split()) == set(req["form"]["scope"].split()):
                    return rec
            elif "json" in req:                    # scores: the learner decides
                if json.loads(request.content).get("userId") == req["json"]["userId"]:
                    return rec
            elif _key(req["method"], req["url"]) == key:
                return rec
        return None

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        rec = self._match(request)
        if rec is None:
            raise AssertionError(f"no recording answers {request.method} {request.url}")
        return as_response(rec)

    def urls(self, path_part: str = "") -> list[str]:
        """URLs requested so far (those containing `path_part`)."""
        return [str(r.url) for r in self.requests if path_part in r.url.path]
