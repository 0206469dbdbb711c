"""Serve a generated sandbox world from its own process, so the LMS's CPU does not share the event
loop (or the GIL) of the client being measured. Used by the benchmarks; not a test.

    .venv/bin/python bench/sandbox_proc.py OUT_DIR --size bench --courses 500 --items 10 --learners 30 \
        --latency-ms 20 --max-in-flight 12 [--full-export]

Writes OUT_DIR/keys/<reg>.pem, OUT_DIR/gradesync.toml and OUT_DIR/bench-world.json (base URL, courses
with their service URLs, the minimum request count per kind), prints `READY <base_url>` and serves until
its stdin closes. `--full-export` also writes the tool's CSVs (for `gradesync import`).
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox_lms import urls  # noqa: E402
from sandbox_lms.profiles import get_profile  # noqa: E402
from sandbox_lms.state import Registration  # noqa: E402


def pages(n: int, page_max: int) -> int:
    """Pages needed for n records at the platform's largest page (an empty listing is still 1 page)."""
    return max(1, -(-n // page_max))


def minimum_requests(reg: Registration) -> dict[str, int]:
    """The fewest service requests that read every course of `reg` completely: line-item pages, one
    results listing (its pages) per line item, roster pages — at the profile's maximum page sizes."""
    profile = get_profile(reg.profile)
    page_max = profile.page_max if hasattr(profile, "page_max") else {}
    out = {"line_items": 0, "results": 0, "memberships": 0}
    for course in reg.courses.values():
        items = [li for li in course.line_items if not li.deleted]
        out["line_items"] += pages(len(items), page_max.get("line_items") or 10**9)
        for li in items:
            visible = profile.visible_results(reg, course, li, None)
            out["results"] += pages(len(visible), page_max.get("results") or 10**9)
        members = profile.visible_members(course, None) or []
        out["memberships"] += pages(len(members), page_max.get("memberships") or 10**9)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--size", default="bench")
    ap.add_argument("--profile", default=None)
    ap.add_argument("--profiles", default=None, help="comma list: one registration per profile (bench size)")
    ap.add_argument("--courses", type=int, default=None)
    ap.add_argument("--items", type=int, default=None)
    ap.add_argument("--learners", type=int, default=None)
    ap.add_argument("--clean", action="store_true")
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--max-in-flight", type=int, default=None)
    ap.add_argument("--full-export", action="store_true")
    args = ap.parse_args()

    from sandbox_lms.server import start_sandbox
    from sandbox_lms.worlds import build_world
    from sandbox_lms.worlds.export import _write_key, toml_text

    t0 = time.perf_counter()
    overrides = {k: v for k, v in (("courses", args.courses), ("items", args.items), ("learners", args.learners),
                                   ("profile", args.profile)) if v is not None}
    if args.profiles:
        overrides["profiles"] = args.profiles.split(",")
    world = build_world(args.seed, args.size, clean=args.clean, **overrides)
    build_s = time.perf_counter() - t0
    running = start_sandbox(world.state, precise_timers=True)     # its own process: few descriptors
    base = running.base_url
    args.out.mkdir(parents=True, exist_ok=True)
    if args.full_export:
        world.export(args.out, base)
    else:
        (args.out / "keys").mkdir(mode=0o700, exist_ok=True)
        for name, pem in world.private_keys.items():
            _write_key(args.out / "keys" / f"{name}.pem", pem)
        (args.out / "gradesync.toml").write_text(toml_text(world, base), encoding="utf-8")
    regs = {}
    for reg in world.state.registrations.values():
        if args.latency_ms or args.max_in_flight:
            running.control.set_faults(reg.name, latency_ms=args.latency_ms, max_in_flight=args.max_in_flight)
        regs[reg.name] = {
            "profile": reg.profile,
            "issuer": urls.issuer(base, reg), "client_id": reg.client_id, "key_id": reg.key_id,
            "token_url": urls.token_url(base, reg), "deployment_id": reg.deployment_id,
            "minimum": minimum_requests(reg),
            "courses": [{"context_id": c.context_id, "lineitems_url": urls.lineitems_url(base, reg, c.context_id),
                         "memberships_url": urls.memberships_url(base, reg, c.context_id)}
                        for c in reg.courses.values()],
            "line_items": sum(len(c.line_items) for c in reg.courses.values()),
        }
    summary = {k: v for k, v in world.summary().items() if k != "planted"}
    (args.out / "bench-world.json").write_text(json.dumps(
        {"base_url": base, "build_s": round(build_s, 2), "summary": summary, "registrations": regs}), encoding="utf-8")
    # The world is built once and lives as long as the process: moved out of the collector's sight, so a
    # full collection while serving scans only what requests allocate. Otherwise each one paused every
    # answer for tens of ms past its deadline (a real LMS's pauses are not ours to charge the client).
    gc.collect()
    gc.freeze()
    print(f"READY {base}", flush=True)
    try:
        sys.stdin.read()            # the parent closes our stdin (or dies) when it is done
    finally:
        running.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
