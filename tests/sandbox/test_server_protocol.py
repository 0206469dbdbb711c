"""What the sandbox's own HTTP serving adds (sandbox_lms/server.py, app.py's SandboxApp): reason phrases
written byte for byte, latency counted from the request's arrival, LMS paths routed past FastAPI with
its error behaviour kept, the admin API still behind FastAPI."""
from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from sandbox_helpers import SCORE_TYPE
from sandbox_lms.app import build_app
from sandbox_lms.runtime import Runtime


def send_in_two(sandbox, request: bytes, split_after: int, pause_s: float) -> bytes:
    """Send `request` on a fresh connection in two segments `pause_s` apart; read until the server closes."""
    with socket.create_connection((sandbox.host, sandbox.port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(request[:split_after])
        time.sleep(pause_s)
        s.sendall(request[split_after:])
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_a_profile_reason_is_the_status_line_and_the_header_is_not_sent(sandbox, tool):
    moodle = tool("moodle")
    token = moodle.token()
    # §10: a refused score's text is the raw body after "Incorrect score received" — braces, quotes,
    # non-ASCII as UTF-8 — and its body is [].
    body = '{"userId": "t1", "scoreGiven": 5, "scoreMaximum": 10, "comment": "très ✓", ' \
           '"activityProgress": "Completed", "gradingProgress": "FullyGraded", ' \
           '"timestamp": "2030-01-01T00:00:00.000+00:00"}'.encode("utf-8")
    r = moodle.http.post(moodle.url("scores"), content=body,
                         headers={"Authorization": f"Bearer {token}", "Content-Type": SCORE_TYPE})
    assert r.status_code == 400 and r.content == b"[]"
    assert r.extensions["reason_phrase"] == b"Incorrect score received" + body
    assert "x-sandbox-reason" not in r.headers
    # Without a profile reason: the standard phrase, still no header.
    r = moodle.get(moodle.url("line_items"), token, accept="")
    assert r.status_code == 200 and r.extensions["reason_phrase"] == b"OK" and "x-sandbox-reason" not in r.headers


def test_a_reason_with_a_line_break_is_a_500_not_a_split_status_line(sandbox, tool):
    moodle = tool("moodle")
    r = moodle.http.post(moodle.url("scores"), content=b'{"userId": "t1",\r\nX-Injected: 1}',
                         headers={"Authorization": f"Bearer {moodle.token()}", "Content-Type": SCORE_TYPE})
    assert r.status_code == 500 and "x-injected" not in r.headers


def test_latency_counts_from_the_requests_first_bytes(sandbox, tool):
    spec = tool("spec")
    token = spec.token()
    sandbox.control.set_faults("spec", latency_ms=400)
    path = spec.url("line_items").removeprefix(sandbox.base_url)
    request = (f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
               "Connection: close\r\n\r\n").encode()
    start = time.perf_counter()
    out = send_in_two(sandbox, request, 20, 0.25)    # the rest of the head 250 ms later
    elapsed = time.perf_counter() - start
    assert out.startswith(b"HTTP/1.1 200 ")
    assert 0.4 <= elapsed < 0.6            # answered at arrival + 400 ms, not at the last segment + 400 ms


def test_an_exception_in_dispatch_is_a_500(sandbox, tool, monkeypatch):
    spec = tool("spec")
    token = spec.token()

    async def broken(call):
        raise RuntimeError("boom")

    monkeypatch.setattr("sandbox_lms.app.handle", broken)
    r = spec.get(spec.url("line_items"), token)
    assert r.status_code == 500 and r.text == "Internal Server Error"
    assert sandbox.runtime.in_flight["spec"] == 0


@pytest.mark.parametrize("method, path, status, body", [
    ("GET", "/_sandbox/counters", 200, None),                         # the admin API
    ("GET", "/_sandbox/nobody/x", 404, b"Not Found"),                 # not an admin route: the catch-all
    ("PATCH", "/spec/x", 405, b'{"detail":"Method Not Allowed"}'),   # FastAPI's answers, as before
    ("GET", "/spec", 307, None),                                      # redirect_slashes, as before
    ("GET", "/nobody/x", 404, b"Not Found"),                          # dispatch: no such registration
])
def test_requests_the_catch_all_route_did_not_take_still_go_to_fastapi(sandbox, method, path, status, body):
    r = httpx.request(method, sandbox.base_url + path, follow_redirects=False)
    assert r.status_code == status
    if body is not None:
        assert r.content == body
    if path == "/_sandbox/counters":
        assert isinstance(json.loads(r.content), dict)


def test_build_app_keeps_runtime_and_control_on_its_state(state):
    rt = Runtime()
    app = build_app(state, rt)
    assert app.state.runtime is rt and app.state.control.runtime is rt
