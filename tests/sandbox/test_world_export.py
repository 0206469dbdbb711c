"""Exporting a world (CSVs with design.md's exact columns, keys, gradesync.toml) and serving it."""
from __future__ import annotations

import csv
import json
import re
import stat
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from gradesync.settings import load_settings
from sandbox_lms import urls
from sandbox_lms.server import start_sandbox
from sandbox_lms.state import ALL_SCOPES
from sandbox_lms.worlds import CSV_COLUMNS, build_world
from sandbox_lms.worlds.answers import Outcome
from sandbox_lms.worlds.world import PROBE_USER

REPO = Path(__file__).resolve().parents[2]
DESIGN = REPO.parent / "shared" / "docs" / "design.md"


def _design_columns() -> dict[str, tuple[str, ...]]:
    """The column lists of design.md "Inputs" 2, parenthesised notes removed."""
    text = DESIGN.read_text(encoding="utf-8")
    cols = {}
    for m in re.finditer(r"`(\w+)\.csv`(?: \(optional[^)]*\))?: (.+?)(?=\n   - `|\n   The same)", text, re.S):
        body = re.sub(r"\([^()]*(?:\([^()]*\)[^()]*)*\)", "", " ".join(m.group(2).split()))
        cols[m.group(1)] = tuple(c.strip() for c in body.split(",") if c.strip())
    return cols


@pytest.mark.skipif(not DESIGN.exists(), reason="design.md not beside the repo")
def test_csv_columns_are_design_md_verbatim():
    assert _design_columns() == dict(CSV_COLUMNS)


def test_export_writes_csvs_keys_and_a_loadable_toml(tmp_path):
    world = build_world(5, "tiny")
    toml = world.export(tmp_path / "out", "http://127.0.0.1:8765")
    out = tmp_path / "out"
    for name, cols in CSV_COLUMNS.items():
        with open(out / f"{name}.csv", newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            assert tuple(reader.fieldnames) == cols
            rows = list(reader)
        assert rows, name
        if name in ("completions", "passbacks", "courses"):
            stamp = {"completions": "completed_at", "passbacks": "timestamp", "courses": "starts_at"}[name]
            assert all(r[stamp][-6] in "+-" for r in rows), "timestamps carry a zone"
    settings = load_settings(toml)
    assert settings.platform_names == list(world.state.registrations)
    for plat in settings.platforms:
        reg = world.state.registrations[plat.name]
        assert plat.client_id == reg.client_id and plat.key_id == reg.key_id
        assert plat.token_url == urls.token_url("http://127.0.0.1:8765", reg)
        assert plat.host_allowed(urls.lineitems_url("http://127.0.0.1:8765", reg, next(iter(reg.courses))))
        mode = stat.S_IMODE(plat.private_key_file.stat().st_mode)
        assert mode == 0o600
        key = serialization.load_pem_private_key(plat.private_key_file.read_bytes(), password=None)
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        assert public == reg.public_key_pem
    truth = json.loads((out / "sandbox-world.json").read_text())
    assert [t["identity"] for t in truth["ground_truth"]] == [f.identity for f in world.ground_truth]


def test_d2l_and_spec_exports_carry_vendor_and_audience(tmp_path):
    world = build_world(5, "bench", courses=2, items=2, learners=5, profiles=["d2l", "spec"], clean=True)
    settings = load_settings(world.export(tmp_path, "http://127.0.0.1:9"))
    by_name = {p.name: p for p in settings.platforms}
    assert by_name["d2l-bench"].audience == urls.D2L_AUDIENCE
    assert by_name["spec-bench"].vendor.value == "generic" and by_name["spec-bench"].audience is None


def test_no_private_key_is_tracked_in_the_repo():
    tracked = subprocess.run(["git", "ls-files", "*.pem", "*.key"], cwd=REPO, capture_output=True, text=True).stdout
    assert tracked.strip() == ""
    assert not list((REPO / "sandbox_lms").rglob("*.pem"))


def test_passback_answers_equal_the_profiles_own_answer_per_row():
    world = build_world(9, "tiny")
    rows = world.tool_records("http://127.0.0.1:1")["passbacks"]
    assert PROBE_USER not in "".join(r["response"] for r in rows)
    log = sorted((p for cell in world.records.passbacks.values() for p in cell), key=lambda p: p.timestamp)
    for p, row in zip(log, rows):
        if p.outcome is Outcome.timed_out:
            assert (row["status_code"], row["response"]) == ("", "")      # no answer: kept without one
            continue
        assert (row["status_code"], row["response"]) == tuple(
            map(str, world._answer("http://127.0.0.1:1", p, p.lms_user_id)))
        if p.outcome is Outcome.accepted:
            assert row["status_code"] == "200"


def _token(base, reg, key_pem: bytes, scopes) -> httpx.Response:
    url = urls.token_url(base, reg)
    now = int(time.time())
    assertion = jwt.encode({"iss": reg.client_id, "sub": reg.client_id, "aud": urls.token_audience(base, reg) or url,
                            "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())},
                           key_pem, algorithm="RS256", headers={"kid": reg.key_id})
    return httpx.post(url, data={"grant_type": "client_credentials", "client_assertion": assertion,
                                 "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                                 "scope": " ".join(sorted(scopes))})


def test_demo_world_builds_and_serves_in_under_5_seconds():
    t0 = time.monotonic()
    world = build_world(7, "demo")
    with start_sandbox(world.state) as sb:
        elapsed = time.monotonic() - t0
        base = sb.base_url
        reg = world.state.registrations["canvas-main"]
        tok = _token(base, reg, world.private_keys["canvas-main"], ALL_SCOPES)
        assert tok.status_code == 200, tok.text
        auth = {"Authorization": f"Bearer {tok.json()['access_token']}"}
        open_course = next(c for c in reg.courses.values() if not c.concluded and not c.tool_removed)
        items = httpx.get(urls.lineitems_url(base, reg, open_course.context_id), headers=auth)
        assert items.status_code == 200 and len(items.json()) >= 1
        concluded = next(c for c in reg.courses.values() if c.concluded)
        assert httpx.get(urls.lineitems_url(base, reg, concluded.context_id), headers=auth).status_code == 404
        # the revoked Canvas registration cannot obtain a score token (grades_not_accepted)
        revoked = world.state.registrations["canvas-noscore"]
        refused = _token(base, revoked, world.private_keys["canvas-noscore"], ALL_SCOPES)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"
    assert elapsed < 5.0, f"demo world build + start took {elapsed:.2f}s"
