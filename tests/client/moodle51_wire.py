"""Moodle 5.1+ (Build 20251017) as seen on the wire, for replay through httpx.MockTransport.

Every answer restates a line of lti-platform-behavior.md §10 (stock mod/lti, November 2026): status
line reason phrases that carry the refusal text with body `[]`, line-item `Link` targets HTML-escaped
with typographic quotes, results paging with `type_id` crashing into a 404 HTML page, strict Accept
on the line-items container, NRPS v2 with bare role names and an ASCII `Link` next.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import httpx

HOST = "moodle.example.edu"
BASE = f"https://{HOST}"
SERVICES = "/mod/lti/services.php"
TOKEN_PATH = "/mod/lti/token.php"
LINEITEMS_PATH = f"{SERVICES}/2/lineitems"
LINEITEMS_URL = f"{BASE}{LINEITEMS_PATH}?type_id=1"
MEMBERSHIPS_PATH = f"{SERVICES}/CourseSection/2/bindings/1/memberships"
MEMBERSHIPS_URL = f"{BASE}{MEMBERSHIPS_PATH}"
LINEITEM_CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE_MEDIA = "application/vnd.ims.lis.v1.score+json"
# §10: results.php with type_id and a limit never sets $lastpage → PHP error page, status 404.
RESULTS_CRASH_PAGE = (b"<!DOCTYPE html><html><head><title>Error</title></head><body><div class=\"errorbox\">"
                      b"<p class=\"errormessage\">Exception - Call to a member function out() on null</p>"
                      b"</div></body></html>")


def item_url(item: int) -> str:
    return f"{BASE}{SERVICES}/2/lineitems/{item}/lineitem?type_id=1"


def results_path(item: int) -> str:
    return f"{SERVICES}/2/lineitems/{item}/lineitem/results"


def scores_path(item: int) -> str:
    return f"{SERVICES}/2/lineitems/{item}/lineitem/scores"


def status_line(status: int, reason: str, body: bytes = b"[]", content_type: str = "application/json") -> httpx.Response:
    """An answer whose reason phrase is Moodle's own text (`HTTP/1.0 {code} {reason}`, §10)."""
    return httpx.Response(status, content=body, headers={"Content-Type": content_type},
                          extensions={"reason_phrase": reason.encode("utf-8")})


@dataclass
class Moodle51:
    """A course of real Moodle 5.1 in replay: items 5, 6, 7; learners 11–15 (+ teacher 3)."""
    items: list[int] = field(default_factory=lambda: [5, 6, 7])
    results: dict[int, list[dict]] = field(default_factory=dict)
    members: list[dict] = field(default_factory=list)
    # Score answers per (item, user id): a refusal replayed instead of 200 with an empty body.
    score_answers: dict[tuple[int, str], httpx.Response] = field(default_factory=dict)
    # Results URLs that answer 404 + the crash page even without `limit` (one item of the course).
    broken_results: set[int] = field(default_factory=set)
    requests: list[httpx.Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.members = self.members or [
            {"status": "Active", "roles": ["Instructor"], "user_id": "3", "name": "Tess Teacher"},
            *({"status": "Active", "roles": ["Learner"], "user_id": str(u), "name": f"Learner {u}",
               "email": f"l{u}@example.edu"} for u in range(11, 16)),
        ]
        for item in self.items:
            self.results.setdefault(item, [
                {"id": f"{BASE}{results_path(item)}?type_id=1&user_id={u}", "scoreOf": item_url(item),
                 "userId": str(u), "resultScore": 7.0, "resultMaximum": 10.0, "comment": "",
                 "timestamp": "2026-11-20T10:00:00+00:00"} for u in (11, 12, 13)])
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        query = {k: v[0] for k, v in parse_qs(request.url.query.decode(), keep_blank_values=True).items()}
        path = request.url.path
        if path == TOKEN_PATH:
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            # §10: silent intersection of the requested scopes; invalid_scope only when empty.
            return httpx.Response(200, json={"access_token": "moodle-access-token-1", "token_type": "Bearer",
                                             "expires_in": 3600, "scope": form["scope"]})
        if path == LINEITEMS_PATH:
            return self._lineitems(request, query)
        if path == MEMBERSHIPS_PATH:
            return self._memberships(query)
        for item in self.items:
            if path == results_path(item):
                if item in self.broken_results or "limit" in query:
                    return httpx.Response(404, content=RESULTS_CRASH_PAGE, headers={"Content-Type": "text/html"})
                return httpx.Response(200, json=self.results[item])
            if path == scores_path(item) and request.method == "POST":
                if request.headers.get("content-type") != SCORE_MEDIA:
                    return status_line(400, "No context or unsupported content type")
                user = json.loads(request.content)["userId"]
                return self.score_answers.get((item, user)) or httpx.Response(200, content=b"")
        return status_line(404, "Not Found", b"")

    def _lineitems(self, request: httpx.Request, query: dict[str, str]) -> httpx.Response:
        # §10: `Accept: */*` on the container → 400 "No context or unsupported content type".
        if request.headers.get("accept") not in (LINEITEM_CONTAINER, None, ""):
            return status_line(400, "No context or unsupported content type")
        rows = [{"id": item_url(i), "label": f"Item {i}", "scoreMaximum": 10, "resourceId": "", "tag": "",
                 "resourceLinkId": str(100 + i), "ltiLinkId": str(100 + i)} for i in self.items]
        if "limit" not in query:                     # `amp;limit` is not `limit`: the whole list again
            return httpx.Response(200, json=rows, headers={"Content-Type": LINEITEM_CONTAINER})
        limit, start = int(query["limit"]), int(query.get("from", "0"))
        base = f"{BASE}{LINEITEMS_PATH}?type_id=1"
        links = [f"<{base}&amp;limit={limit}&amp;from=0>; rel=“first”"]
        if start + limit < len(rows):
            links.append(f"<{base}&amp;limit={limit}&amp;from={start + limit}>; rel=“next”")
        links.append(f"<{base}&amp;limit={limit}&amp;from={(len(rows) - 1) // limit * limit}>; rel=“last”")
        return httpx.Response(200, content=json.dumps(rows[start:start + limit]).encode(),
                              headers=[(b"Content-Type", LINEITEM_CONTAINER.encode()),
                                       (b"Link", ", ".join(links).encode("utf-8"))])

    def _memberships(self, query: dict[str, str]) -> httpx.Response:
        body = {"id": MEMBERSHIPS_URL, "context": {"id": "2", "label": "C2", "title": "Course 2"}}
        if "limit" not in query:
            return httpx.Response(200, json={**body, "members": self.members})
        limit, start = int(query["limit"]), int(query.get("from", "0"))
        headers = {}
        if start + limit < len(self.members):
            # §10: NRPS paging by a standard Link header, ASCII quotes, no body nextPage.
            headers["Link"] = f'<{MEMBERSHIPS_URL}?limit={limit}&from={start + limit}>; rel="next"'
        return httpx.Response(200, json={**body, "members": self.members[start:start + limit]}, headers=headers)

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]
