"""Raw LTI Advantage calls to a real Moodle, each kept as a recording (status line with its reason phrase,
Content-Type, Link, body) — used to plant the tool's earlier score POSTs and to record fixtures.

Deliberately not `lti_client`: what is recorded must be what Moodle says, not what our client makes of it.
Secrets never leave this module: access tokens and assertions are replaced in every recording.
"""
from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_RESULT = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
# What lti_client asks for its reads (lti_client.types.READ_SCOPES), in the order it sends them (sorted).
READ_SCOPES = tuple(sorted((SCOPE_LINEITEM_READONLY, SCOPE_RESULT, SCOPE_NRPS)))

MEDIA = {
    "lineitems": "application/vnd.ims.lis.v2.lineitemcontainer+json",
    "results": "application/vnd.ims.lis.v2.resultcontainer+json",
    "memberships": "application/vnd.ims.lti-nrps.v2.membershipcontainer+json",
    "score": "application/vnd.ims.lis.v1.score+json",
}
REDACTED = "[redacted]"
# Moodle's HTML error pages carry the (guest) session key: not a token of ours, stripped all the same.
SESSKEY = re.compile(r'("sesskey"\s*:\s*")[^"]*(")')


def reason_of(response: httpx.Response) -> str:
    """The status line's reason phrase exactly as sent (h11 hands httpx the raw bytes)."""
    raw = response.extensions.get("reason_phrase", b"")
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


@dataclass
class Recording:
    """One request and Moodle's answer, secrets stripped."""
    name: str
    request: dict[str, Any]
    status: int
    reason: str
    http_version: str
    headers: dict[str, str]
    body: str
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "note": self.note, "request": self.request,
                "response": {"http_version": self.http_version, "status": self.status, "reason": self.reason,
                             "headers": self.headers, "body": self.body}}


@dataclass
class MoodleWire:
    """Token + AGS/NRPS calls for one tool type (client id) of a real Moodle at `wwwroot`."""
    wwwroot: str
    client_id: str
    private_key_pem: bytes
    secrets: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.http = httpx.Client(timeout=60.0)
        self.token_url = f"{self.wwwroot}/mod/lti/token.php"

    def _assertion(self) -> str:
        now = int(time.time())
        token = jwt.encode({"iss": self.client_id, "sub": self.client_id, "aud": self.token_url, "iat": now,
                            "exp": now + 300, "jti": str(uuid.uuid4())}, self.private_key_pem, algorithm="RS256")
        self.secrets.add(token)
        return token

    def scrub(self, text: str) -> str:
        """`text` with every access token and assertion seen so far replaced."""
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return SESSKEY.sub(rf"\g<1>{REDACTED}\g<2>", text)

    def _record(self, name: str, request: dict[str, Any], response: httpx.Response, note: str = "") -> Recording:
        keep = {k: v for k, v in response.headers.items() if k.lower() in ("content-type", "link")}
        # Link values as UTF-8 (Moodle's typographic quotes), not httpx's latin-1 reading.
        links = [v.decode("utf-8", "replace") for k, v in response.headers.raw if k.lower() == b"link"]
        if links:
            keep = {k: v for k, v in keep.items() if k.lower() != "link"} | {"link": ", ".join(links)}
        return Recording(name=name, request=json.loads(self.scrub(json.dumps(request))), status=response.status_code,
                         reason=self.scrub(reason_of(response)), http_version=response.http_version,
                         headers={k.lower(): self.scrub(v) for k, v in keep.items()},
                         body=self.scrub(response.text), note=note)

    def token(self, scopes: tuple[str, ...], name: str = "token", note: str = "",
              assertion: str | None = None) -> tuple[str | None, Recording]:
        """POST token.php; returns (access token or None, recording)."""
        form = {"grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion or self._assertion(), "scope": " ".join(scopes)}
        response = self.http.post(self.token_url, data=form)
        token = None
        if response.status_code == 200:
            token = response.json().get("access_token")
            if token:
                self.secrets.add(token)
        request = {"method": "POST", "url": self.token_url, "form": {**form, "client_assertion": REDACTED}}
        return token, self._record(name, request, response, note)

    def get(self, url: str, token: str, accept: str | None, name: str, note: str = "") -> Recording:
        headers = {"Authorization": f"Bearer {token}"}
        if accept is not None:
            headers["Accept"] = accept
        response = self.http.get(url, headers=headers)
        return self._record(name, {"method": "GET", "url": url, "headers": {"Accept": accept}}, response, note)

    def post_score(self, lineitem_url: str, token: str, body: dict[str, Any], name: str = "score",
                   note: str = "", content_type: str | None = None) -> Recording:
        """POST a score to `<lineitem path>/scores?<query>` (the path gets /scores, the query is kept, §7 #18)."""
        url = scores_url(lineitem_url)
        ctype = content_type or MEDIA["score"]
        response = self.http.post(url, content=json.dumps(body).encode(),
                                  headers={"Authorization": f"Bearer {token}", "Content-Type": ctype})
        return self._record(name, {"method": "POST", "url": url, "headers": {"Content-Type": ctype}, "json": body},
                            response, note)


def scores_url(lineitem_url: str) -> str:
    """`…/lineitem?type_id=1` → `…/lineitem/scores?type_id=1`."""
    path, _, query = lineitem_url.partition("?")
    return f"{path}/scores" + (f"?{query}" if query else "")


def results_url(lineitem_url: str, query: str = "") -> str:
    path, _, q = lineitem_url.partition("?")
    params = "&".join(p for p in (q, query) if p)
    return f"{path}/results" + (f"?{params}" if params else "")


def iso_z(ts: float) -> str:
    """ISO 8601 with milliseconds and a zone, the way the tool sends timestamps."""
    from datetime import datetime, timezone
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")
