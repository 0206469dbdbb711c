"""A real HTTP server on 127.0.0.1 standing in for Slack's incoming webhooks: records every POST and
answers from a per-path script (e.g. 429 with Retry-After twice, then 200 "ok")."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Post:
    path: str
    body: dict[str, Any]
    at: float
    status: int


@dataclass
class CaptureServer:
    httpd: ThreadingHTTPServer
    posts: list[Post] = field(default_factory=list)
    scripts: dict[str, list[tuple[int, dict[str, str], str]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, name: str) -> str:
        """A webhook URL whose path looks like Slack's (the secret part)."""
        return f"{self.base}/services/T0001/B0001/{name}-secret-token"

    def script(self, name: str, *responses: tuple[int, dict[str, str], str]) -> None:
        """Answer the next POSTs to `name` with these (status, headers, body); then 200 ok."""
        self.scripts.setdefault(f"/services/T0001/B0001/{name}-secret-token", []).extend(responses)

    def posts_to(self, name: str) -> list[Post]:
        return [p for p in self.posts if p.path.endswith(f"/{name}-secret-token")]

    def ok_posts_to(self, name: str) -> list[Post]:
        return [p for p in self.posts_to(name) if p.status == 200]


def start() -> CaptureServer:
    holder: dict[str, CaptureServer] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n)
            srv = holder["srv"]
            with srv.lock:
                queue = srv.scripts.get(self.path) or []
                status, headers, body = queue.pop(0) if queue else (200, {}, "ok")
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    parsed = {"_raw": raw.decode("utf-8", "replace")}
                srv.posts.append(Post(self.path, parsed, time.monotonic(), status))
            data = body.encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):  # keep test output quiet
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["srv"] = srv = CaptureServer(httpd)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return srv
