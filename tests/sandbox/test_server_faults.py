"""Fault and load injection, counters and the admin routes, over real HTTP."""
from __future__ import annotations

import concurrent.futures as cf
import json
import time

import httpx
import pytest

from sandbox_helpers import Tool, make_state
from sandbox_lms.server import start_sandbox
from sandbox_lms.state import FaultConfig


def _get_many(url: str, token: str, n: int, timeout: float = 5.0) -> list[httpx.Response]:
    with cf.ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: httpx.get(url, headers={"Authorization": f"Bearer {token}"},
                                                 timeout=timeout), range(n)))


def test_fixed_latency_is_applied_concurrently(sandbox, tool):
    t = tool("spec")
    token = t.token()
    sandbox.control.set_faults("spec", latency_ms=300)
    start = time.perf_counter()
    assert t.get(t.url("line_items"), token).status_code == 200
    assert time.perf_counter() - start >= 0.3
    start = time.perf_counter()
    rs = _get_many(t.url("line_items"), token, 10)
    elapsed = time.perf_counter() - start
    assert all(r.status_code == 200 for r in rs)
    assert elapsed < 1.5, f"10 concurrent requests at 300 ms took {elapsed:.2f}s: the server serialised them"


def test_random_latency_stays_within_jitter(sandbox, tool):
    t = tool("spec")
    token = t.token()
    sandbox.control.set_faults("spec", latency_ms=50, latency_jitter_ms=100)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        t.get(t.url("line_items"), token)
        times.append(time.perf_counter() - start)
    assert min(times) >= 0.05 and max(times) < 0.5


def test_max_in_flight_excess_gets_the_profile_throttle(sandbox, tool):
    t = tool("spec")
    token = t.token()
    sandbox.control.set_faults("spec", max_in_flight=2, latency_ms=400)
    rs = _get_many(t.url("line_items"), token, 6)
    codes = sorted(r.status_code for r in rs)
    assert codes.count(200) >= 1 and codes.count(429) >= 3 and set(codes) <= {200, 429}
    assert sandbox.counters.get("spec", "throttled") == codes.count(429)


def test_5xx_rate_and_seeded_reproducibility(tool_key):
    def run() -> list[int]:
        state = make_state(tool_key[1], profiles=("spec",))
        state.registrations["spec"].faults = FaultConfig(error_rate_5xx=0.5, seed=42)
        with start_sandbox(state) as sb:
            t = Tool(sb, state.registrations["spec"], tool_key[0])
            token = t.token()                                          # the token endpoint is never failed
            return [t.get(t.url("line_items"), token).status_code for _ in range(16)]

    first, second = run(), run()
    assert first == second                                              # same seed → same faults
    assert set(first) >= {200} and set(first) - {200} <= {500, 503} and len(set(first)) > 1


def test_timeout_hangs_past_the_client_timeout(sandbox, tool):
    t = tool("spec")
    token = t.token()
    sandbox.control.set_faults("spec", timeout_rate=1.0, hang_seconds=2.0)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(t.url("line_items"), headers={"Authorization": f"Bearer {token}"}, timeout=0.3)
    sandbox.control.set_faults("spec", timeout_rate=0.0)
    assert t.get(t.url("line_items"), token).status_code == 200


def test_malformed_json_bodies(sandbox, tool):
    t = tool("canvas")
    token = t.token()
    sandbox.control.set_faults("canvas", malformed_json_rate=1.0)
    r = t.get(t.url("line_items"), token)
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.text)


def test_paging_loop_next_points_at_the_same_page(sandbox, tool):
    canvas, moodle = tool("canvas"), tool("moodle")
    sandbox.control.set_faults("canvas", paging_loop=True)
    sandbox.control.set_faults("moodle", paging_loop=True)
    url = canvas.url("line_items")
    r = canvas.get(url)
    assert f'<{url}>; rel="next"' in r.headers["link"]
    murl = moodle.url("line_items") + "&limit=1"
    r = moodle.get(murl, accept="application/vnd.ims.lis.v2.lineitemcontainer+json")
    escaped = murl.replace("&", "&amp;")                    # Moodle HTML-escapes its Link targets (§10)
    assert f"<{escaped}>; rel=\u201cnext\u201d" in r.headers["link"]


def test_down_registration_answers_503_others_unaffected(sandbox, tool):
    t, other = tool("spec"), tool("canvas")
    sandbox.control.set_faults("spec", down=True)
    assert t.token_response().status_code == 503
    assert other.token_response().status_code == 200


def test_faults_can_be_set_at_start(tool_key):
    state = make_state(tool_key[1], profiles=("spec",))
    state.registrations["spec"].faults = FaultConfig(down=True)
    with start_sandbox(state) as sb:
        t = Tool(sb, state.registrations["spec"], tool_key[0])
        assert t.token_response().status_code == 503


def test_counters_per_endpoint_and_per_score_cell(sandbox, tool):
    t = tool("spec")
    token = t.token()
    t.get(t.url("line_items"), token)
    t.get(t.url("results"), token)
    t.get(t.url("results"), token)
    t.post_score("s2", 1, token=token)
    t.post_score("s2", 2, token=token)
    t.post_score("t1", 2, token=token)                                 # refused, still counted
    c = sandbox.counters
    assert (c.get("spec", "token"), c.get("spec", "line_items"), c.get("spec", "results"),
            c.get("spec", "scores")) == (1, 1, 2, 3)
    assert c.scores_for("spec", "C1", 1, "s2") == 2 and c.scores_for("spec", "C1", 1, "t1") == 1
    assert len(sandbox.runtime.score_log) == 2
    snap = httpx.get(sandbox.base_url + "/_sandbox/counters").json()
    assert snap["requests"]["spec/results"] == 2 and snap["score_posts"]["spec/C1/1/s2"] == 2


def test_admin_routes_drive_instructor_actions_and_faults(sandbox, tool):
    t = tool("canvas")
    admin = sandbox.base_url + "/_sandbox/canvas"
    r = httpx.post(admin + "/courses/C1/line_items/1/manual_grade", json={"user_id": "s1", "score": 4.5})
    assert r.status_code == 200
    assert t.get(t.url("results")).json()[0]["resultScore"] == 4.5
    assert httpx.post(admin + "/courses/C1/line_items/1/unpublish").status_code == 200
    assert t.post_score("s2", 5).status_code == 422
    assert httpx.post(admin + "/courses/C1/line_items/1/publish").status_code == 200
    assert t.post_score("s2", 5).status_code == 200
    assert httpx.post(admin + "/courses/C1/members/s2", json={"status": "Inactive"}).status_code == 200
    assert t.post_score("s2", 6).status_code == 422
    assert httpx.post(admin + "/scopes/score", json={"granted": False}).status_code == 200
    assert t.token_response().json()["error"] == "invalid_scope"
    assert httpx.post(admin + "/scopes/score", json={"granted": True}).status_code == 200
    assert httpx.post(admin + "/courses/C1/tool", json={"removed": True}).status_code == 200
    assert t.get(t.url("line_items")).status_code == 401
    assert httpx.post(admin + "/courses/C2/conclude", json={}).status_code == 200
    assert t.get(t.url("line_items", "C2")).status_code == 404
    r = httpx.post(admin + "/faults", json={"latency_ms": 5, "token_lifetime_s": 30})
    assert r.status_code == 200 and r.json()["latency_ms"] == 5
    assert httpx.get(admin + "/faults").json()["token_lifetime_s"] == 30
    assert httpx.post(admin + "/faults", json={"bogus": 1}).status_code == 400
    assert httpx.post(admin + "/courses/NOPE/conclude", json={}).status_code == 404
