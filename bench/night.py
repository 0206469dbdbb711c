"""Benchmark: one night for an institution (issue 12 goal 7) → bench/results.json `night`.

    .venv/bin/python bench/night.py [--quick] [--courses N]

A simulated institution in the sandbox (bench/sandbox_proc.py in its own process: N courses × 10 items ×
40 learners, Canvas profile, 20 ms latency, 403 beyond 12 in flight), its CSVs imported with the real
`gradesync import`, then real nightly runs (flows/audit.py `nightly_audit`), each in its own process
against one Prefect server (scripts/prefect_stack.py, PostgreSQL when 127.0.0.1:5432 answers):

- requests_ratio: sandbox requests of night 2 (the normal plan, nothing changed) ÷ night 1 (`full`);
  what night 2 did not read, by reason (`audit_run.params.not_read`);
- bound_ratio: requests × latency ÷ L (the key's in-flight limit) vs the night's extraction time (sum over
  the platform's batches of `timings.extract`: one key's batches take turns on it); the other steps too;
- worker_peak_rss_mb: a full night at N/2 and N courses, same batch size: `audit_batch.peak_rss_mb` and
  the process's ru_maxrss (os.wait4);
- scaling_2_workers: two platforms (canvas + moodle, each its own key) through the nightly deployment on
  the process work pool, one worker vs two (same `--limit` each: the nightly parent holds one slot
  while it waits for its batches);
- projected_hours_10k: 10,000 courses × 200 learners × 50 items, one Canvas key, from the page sizes,
  the measured requests_ratio and the measured seconds per expected grade of the CPU steps.
Every number is measured in this run on this machine; the load average is recorded beside them.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from extraction import SandboxProcess  # noqa: E402
from sandbox_proc import pages  # noqa: E402
from scripts.prefect_stack import prefect_stack  # noqa: E402

CLI = str(Path(sys.executable).with_name("gradesync"))
LATENCY_MS, IN_FLIGHT, ITEMS, LEARNERS = 20.0, 12, 10, 40
PLATFORM = "canvas-bench"
WORKER_LIMIT = 2              # `prefect worker start --limit`, the same for one worker and for two
PROJECTION = {"courses": 10_000, "learners": 200, "items": 50, "in_flight": 12,
              "latencies_ms": (100.0, 250.0, 500.0), "headline_latency_ms": 250.0}
CPU_STEPS = ("load", "validate", "diagnose", "save")   # `validate` includes reconcile (flows/audit.py)

NIGHT = """
import asyncio, json, sys
from flows.audit import nightly_audit
out = asyncio.run(nightly_audit(config=sys.argv[1], alerts=False, resync=False, distribute=False,
                                full=sys.argv[2] == "full"))
print(json.dumps(out))
"""
DEPLOYED_NIGHT = """
import json, sys
from prefect.deployments import run_deployment
run = run_deployment("nightly-audit/nightly-audit", timeout=1800,
                     parameters={"config": sys.argv[1], "alerts": False, "resync": False, "full": True})
print(json.dumps({"state": run.state.type.value, "name": run.state.name,
                  "flow_run_s": (run.end_time - run.start_time).total_seconds() if run.end_time else None}))
"""


def _load() -> float:
    return round(os.getloadavg()[0], 2)


# ---- a world: served, configured, imported ----------------------------------------------------------
@contextmanager
def served_world(root: Path, courses: int, profiles: tuple[str, ...], batch_courses: int, db_url: str | None,
                 env: dict[str, str], clean: bool = False):
    """Serve a bench world in its own process, write its gradesync.toml (every key at 12 in flight,
    `batch_courses`, the app database) and import its CSVs with the CLI. Yields (sandbox, config path)."""
    out = root / f"world-{'-'.join(profiles)}-{courses}{'-clean' if clean else ''}"
    db_url = db_url or f"sqlite:///{out / 'gradesync.db'}"
    args = ["--size", "bench", "--courses", str(courses), "--items", str(ITEMS), "--learners", str(LEARNERS),
            "--profiles", ",".join(profiles), "--latency-ms", str(LATENCY_MS), "--max-in-flight", str(IN_FLIGHT),
            "--full-export"] + (["--clean"] if clean else [])
    with SandboxProcess(out, *args) as sb:
        config = out / "gradesync.toml"
        text = config.read_text(encoding="utf-8")
        # Each key's in-flight limit = the sandbox's throttle (Moodle's vendor default would be 4).
        text = re.sub(r'^(key_id = .*)$', rf'\1\nmax_concurrency = {IN_FLIGHT}', text, flags=re.M)
        text += (f'\n[database]\nurl = "{db_url}"\n\n[audit]\nreport_dir = "{out / "reports"}"\n'
                 f'batch_courses = {batch_courses}\n')
        config.write_text(text, encoding="utf-8")
        _term_running(out / "courses.csv")
        t0 = time.perf_counter()
        imp = subprocess.run([CLI, "--config", str(config), "import", str(out)], env=env, cwd=out,
                             capture_output=True, text=True)
        if imp.returncode not in (0, 2):
            raise RuntimeError(f"import failed ({imp.returncode}): {imp.stdout[-1500:]} {imp.stderr[-1500:]}")
        sb.import_s = round(time.perf_counter() - t0, 1)
        yield sb, config


def _term_running(courses_csv: Path) -> None:
    """Move every course's end date to 120 days from now: the sandbox's calendar is fixed (its terms
    ended long ago, and an ended course is not read nightly), while the night to measure is one in the
    middle of a term. Start dates stay: every completion is still after its course's start."""
    import csv
    from datetime import datetime, timedelta, timezone

    with courses_csv.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    end = (datetime.now(timezone.utc) + timedelta(days=120)).isoformat(timespec="seconds")
    for row in rows:
        row["ends_at"] = end
    with courses_csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _python(code: str, args: list[str], env: dict[str, str], log: Path) -> dict:
    """Run `code` in a child Python; its last stdout line (JSON), wall seconds, ru_maxrss and CPU seconds."""
    with open(log, "w") as err, open(log.with_suffix(".out"), "w+") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen([sys.executable, "-c", code, *args], env=env, cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)      # the child's own rusage (not the max over all children)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        lines = out.read().strip().splitlines()
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"child failed ({p.returncode}): {log.read_text(errors='replace')[-3000:]}")
    return {"result": json.loads(lines[-1]), "wall_s": round(wall, 2), "ru_maxrss_mb": round(usage.ru_maxrss / 1024, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2)}


def run_rows(db_url: str, run_id: int | None = None) -> dict:
    """The nightly run (this id, else the newest) and its batches as the database holds them."""
    import models as m
    from sqlmodel import select

    with m.session_scope(m.make_engine(db_url)) as s:
        q = select(m.AuditRun).where(m.AuditRun.kind == "nightly")
        run = s.get(m.AuditRun, run_id) if run_id else s.exec(q.order_by(m.AuditRun.id.desc())).first()
        batches = list(s.exec(select(m.AuditBatch).where(m.AuditBatch.run_id == run.id).order_by(m.AuditBatch.seq)))
        with_findings = {(f.platform, f.context_id) for f in s.exec(select(m.Finding).where(m.Finding.run_id == run.id))}
        audits = list(s.exec(select(m.CourseAudit).where(m.CourseAudit.run_id == run.id)))
        watched = {(a.platform, a.context_id) for a in audits
                   if a.status != "audited" or a.reason or (a.platform, a.context_id) in with_findings}
        return {"run_id": run.id, "state": run.state, "params": dict(run.params),
                "courses_watched_nightly": sum(1 for p, _ in watched if p == PLATFORM),
                "batches": [{"seq": b.seq, "platform": b.platform, "state": b.state, "worker": b.worker,
                             "courses": b.course_count, "peak_rss_mb": b.peak_rss_mb,
                             "slots": max((v.get("slots") or 0 for v in (b.request_stats or {}).values()
                                              if isinstance(v, dict)), default=None),
                             "timings": (b.counts or {}).get("timings", {}),
                             "expected_grades": (b.counts or {}).get("expected_grades", 0)} for b in batches]}


def night(sb: SandboxProcess, config: Path, env: dict[str, str], full: bool, log: Path) -> dict:
    """One nightly in its own process; the sandbox's counters of that night; the run's rows."""
    sb.admin("/counters/reset", "POST")
    child = _python(NIGHT, [str(config), "full" if full else "plan"], env, log)
    counters = sb.admin("/counters")
    from gradesync.settings import load_settings
    rows = run_rows(load_settings(config).database.url, child["result"]["run_id"])
    mine = [b for b in rows["batches"] if b["platform"] == PLATFORM]
    steps = {k: round(sum(b["timings"].get(k, 0.0) for b in mine), 2)
             for k in ("load", "wait_budget", "extract", "validate", "diagnose", "save")}
    kinds = {k.split("/", 1)[1]: v for k, v in counters["requests"].items() if k.startswith(PLATFORM + "/")}
    service = sum(v for k, v in kinds.items() if k not in ("token", "throttled", "late"))
    return {"full": full, "wall_s": child["wall_s"], "process_cpu_s": child["cpu_s"],
            "process_ru_maxrss_mb": child["ru_maxrss_mb"], "outcome": child["result"],
            "courses_read": sum(b["courses"] for b in mine), "batches": len(mine),
            "batch_peak_rss_mb": max((b["peak_rss_mb"] or 0.0) for b in mine) if mine else None,
            "slots": max((b["slots"] or 0) for b in mine) if mine else None,
            "not_read": rows["params"].get("not_read", {}), "steps_s": steps,
            # findings, unverified or grades left unchecked: read again the next night (night_plan.py)
            "courses_watched_nightly": rows["courses_watched_nightly"],
            "expected_grades": sum(b["expected_grades"] for b in mine),
            "requests": service, "requests_by_kind": kinds,
            "peak_in_flight": counters.get("peak_in_flight", {}).get(PLATFORM), "load_after": _load()}


# ---- the figures ------------------------------------------------------------------------------------
def bound(n: dict, in_flight: int) -> dict:
    """requests × latency ÷ in_flight vs the measured extraction seconds."""
    b = n["requests"] * LATENCY_MS / 1000 / in_flight
    return {"bound_s": round(b, 2), "extract_s": n["steps_s"]["extract"],
            "ratio": round(b / n["steps_s"]["extract"], 3) if n["steps_s"]["extract"] else None}


def projection(requests_ratio: float, grades_ratio: float, n1: dict, courses: int, batch_courses: int) -> dict:
    """Hours of a typical night at 10,000 courses from the page sizes and the measured costs."""
    from gradesync.budget import nightly_slots
    from gradesync.settings import AuditSettings
    from sandbox_lms.profiles import get_profile

    P = PROJECTION
    pm = get_profile("canvas").page_max
    per_course = (pages(P["items"], pm["line_items"]) + P["items"] * pages(P["learners"], pm["results"])
                  + pages(P["learners"], pm["memberships"]))
    full_requests = P["courses"] * per_course
    typical_requests = full_requests * requests_ratio
    share = AuditSettings().on_demand_reserved_share
    slots = nightly_slots(P["in_flight"], share)
    # Measured: expected grades per (item × learner) of the bench world, CPU-step seconds per expected grade.
    expected_share = n1["expected_grades"] / (courses * ITEMS * LEARNERS)
    cpu_s = sum(n1["steps_s"][k] for k in CPU_STEPS)
    per_grade = cpu_s / n1["expected_grades"]
    client_s_per_request = n1["steps_s"]["extract"] / n1["requests"]   # upper bound of client cost/request
    full_grades = P["courses"] * P["items"] * P["learners"] * expected_share
    typical_cpu = full_grades * grades_ratio * per_grade
    batch_tail = batch_courses * P["items"] * P["learners"] * expected_share * per_grade
    hours = {}
    for lat in P["latencies_ms"]:
        per_request = max(lat / 1000 / slots, client_s_per_request)
        req_s = typical_requests * per_request
        hours[f"{lat:g}"] = {"requests_h": round(req_s / 3600, 2),
                             "overlapped_h": round((max(req_s, typical_cpu) + batch_tail) / 3600, 2),
                             "serial_h": round((req_s + typical_cpu) / 3600, 2)}
    return {"hours": hours["%g" % P["headline_latency_ms"]]["overlapped_h"], "by_latency_ms": hours,
            "inputs": {"courses": P["courses"], "learners_per_course": P["learners"], "items_per_course": P["items"],
                       "page_max": pm, "requests_per_course_full": per_course, "full_requests": full_requests,
                       "requests_ratio": round(requests_ratio, 3), "typical_requests": round(typical_requests),
                       "key_in_flight": P["in_flight"], "nightly_slots": slots, "reserved_share": share,
                       "expected_share": round(expected_share, 3), "full_expected_grades": round(full_grades),
                       "grades_ratio": round(grades_ratio, 3),
                       "cpu_us_per_expected_grade": round(per_grade * 1e6, 2),
                       "cpu_ms_per_course": round(cpu_s / max(1, n1["courses_read"]) * 1000, 1),
                       "measured_s_per_request_at_bench": round(client_s_per_request * 1000, 2),
                       "typical_cpu_h": round(typical_cpu / 3600, 2), "batch_tail_h": round(batch_tail / 3600, 3)},
            "assumes": "production latency per request as listed, a request every L ÷ (nightly slots) s, or the "
                       "measured extraction seconds per request when that is larger (client-bound); the CPU steps "
                       "(load, reconcile+validate, diagnose, save) of one batch overlap the next batch's extraction "
                       "(batches_per_platform=2, on another worker slot), so a night is max(requests, CPU) + one "
                       "batch's CPU; serial_h adds them instead. Costs per expected grade as measured on this "
                       "machine (SQLite app database)."}


def scaling(root: Path, courses: int, stack, env: dict[str, str]) -> dict:
    """The nightly deployment on the work pool: two platforms, one worker, then two (same --limit)."""
    from gradesync.settings import load_settings

    out = {"courses_per_platform": courses, "worker_limit": WORKER_LIMIT, "postgres": stack.postgres}
    with served_world(root, courses, ("canvas", "moodle"), max(1, courses // 2), stack.app_db, stack.env) as (sb, config):
        out["import_s"] = sb.import_s
        limits = {r.name: r.key_in_flight_limit for r in load_settings(config).platforms}
        for workers in (("w1",), ("w1", "w2")):
            stack.start_worker(workers[-1], WORKER_LIMIT)      # w1 for the first night, w2 beside it next
            sb.admin("/counters/reset", "POST")
            child = _python(DEPLOYED_NIGHT, [str(config)], stack.env, root / f"deployed-{len(workers)}.log")
            counters = sb.admin("/counters")
            rows = run_rows(stack.app_db)
            out[f"{len(workers)}_worker"] = {
                "wall_s": child["wall_s"], "flow_run_s": child["result"]["flow_run_s"],
                "state": child["result"]["name"], "batches": len(rows["batches"]),
                "batches_by_worker": {w: sum(1 for b in rows["batches"] if b["worker"] == w)
                                      for w in sorted({b["worker"] for b in rows["batches"]})},
                "failed_batches": sum(1 for b in rows["batches"] if b["state"] != "completed"),
                "peak_in_flight": counters.get("peak_in_flight", {}), "key_limits": limits,
                "load_after": _load()}
    one, two = out["1_worker"], out["2_worker"]
    out["ratio"] = round(one["wall_s"] / two["wall_s"], 2)
    out["ratio_flow_run"] = round(one["flow_run_s"] / two["flow_run_s"], 2) if two["flow_run_s"] else None
    return out


def run(courses: int = 100, batch_courses: int = 25, scale_courses: int = 16, quick: bool = False) -> dict:
    """The whole `night` section."""
    if quick:
        courses, batch_courses, scale_courses = 40, 10, 8
    r: dict = {"world": {"courses": courses, "items": ITEMS, "learners": LEARNERS, "profile": "canvas",
                         "latency_ms": LATENCY_MS, "sandbox_max_in_flight": IN_FLIGHT, "key_in_flight": IN_FLIGHT,
                         "batch_courses": batch_courses}}
    with tempfile.TemporaryDirectory(prefix="gradesync-bench-night-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        with prefect_stack(root / "stack", workers=()) as stack:
            r["stack"] = {"start_s": round(time.perf_counter() - t0, 1), "postgres": stack.postgres}
            env = stack.env
            print(f"  stack up in {r['stack']['start_s']} s (PostgreSQL {stack.postgres})", flush=True)
            # Nights 1 and 2 on a world without planted cases (the planted bench world has findings in most
            # courses: read again every night); the half-size world keeps them, and its share of courses
            # watched nightly is reported beside the ratio.
            with served_world(root, courses, ("canvas",), batch_courses, None, env, clean=True) as (sb, config):
                r["world"]["import_s"] = sb.import_s
                n1 = night(sb, config, env, True, root / "night1.log")
                print(f"  night 1 (full): {n1['wall_s']} s, {n1['requests']} requests", flush=True)
                n2 = night(sb, config, env, False, root / "night2.log")
                print(f"  night 2 (plan): {n2['wall_s']} s, {n2['requests']} requests", flush=True)
                # The bound at the production batch size (one batch here): the small batches above show
                # memory across batches, and each batch pays fixed costs (tokens, task run, lease, ramp).
                from gradesync.settings import AuditSettings
                small = config.read_text(encoding="utf-8")
                config.write_text(re.sub(r"^batch_courses = \d+$", f"batch_courses = {AuditSettings().batch_courses}",
                                         small, flags=re.M), encoding="utf-8")
                nd = night(sb, config, env, True, root / "night-default-batch.log")
                config.write_text(small, encoding="utf-8")
                print(f"  full night, default batch size: {nd['wall_s']} s", flush=True)
            with served_world(root, courses // 2, ("canvas",), batch_courses, None, env) as (sb, config):
                half = night(sb, config, env, True, root / "night-half.log")
                print(f"  half night (full): {half['wall_s']} s", flush=True)
            sc = scaling(root, scale_courses, stack, env)
            print(f"  scaling: {sc['1_worker']['wall_s']} s vs {sc['2_worker']['wall_s']} s", flush=True)
    ratio = n2["requests"] / n1["requests"]
    grades_ratio = n2["expected_grades"] / n1["expected_grades"] if n1["expected_grades"] else 0.0
    r["nights"] = {"full": n1, "second": n2, "half_size_full": half, "full_default_batch": nd}
    r["requests_ratio"] = round(ratio, 3)
    watched = n1["courses_watched_nightly"] / max(1, n1["courses_read"])
    planted = half["courses_watched_nightly"] / max(1, half["courses_read"])
    r["second_night"] = {"courses_read": n2["courses_read"], "not_read": n2["not_read"], "world_clean": True,
                         "share_watched_nightly_after_night_1": round(watched, 3),
                         # what the plan should read: the watched courses + 1/7 of the others (rolling round)
                         "expected_share_read": round(watched + (1 - watched) / 7, 3),
                         "planted_world_share_watched_nightly": round(planted, 3),
                         "planted_world_expected_share_read": round(planted + (1 - planted) / 7, 3),
                         "courses": n1["courses_read"], "expected_grades_ratio": round(grades_ratio, 3)}
    b = bound(nd, IN_FLIGHT)
    held = bound(nd, nd["slots"] or IN_FLIGHT)
    r["bound_ratio"] = b["ratio"]
    r["bound"] = {**b, "batch_courses": nd["courses_read"] // max(1, nd["batches"]), "batches": nd["batches"],
                  "key_in_flight": IN_FLIGHT, "nightly_slots_held": nd["slots"],
                  "ratio_vs_slots_held": held["ratio"], "steps_s": nd["steps_s"],
                  "ms_per_request": round(nd["steps_s"]["extract"] / nd["requests"] * 1000, 2),
                  "peak_in_flight": nd["peak_in_flight"],
                  "small_batches": {**bound(n1, IN_FLIGHT), "batch_courses": batch_courses, "batches": n1["batches"],
                                    "ms_per_request": round(n1["steps_s"]["extract"] / n1["requests"] * 1000, 2),
                                    "steps_s": n1["steps_s"]},
                  "second_night": bound(n2, IN_FLIGHT)}
    sizes = {str(half["courses_read"]): half, str(n1["courses_read"]): n1}
    r["worker_peak_rss_mb"] = max(max(n["batch_peak_rss_mb"] or 0, n["process_ru_maxrss_mb"]) for n in sizes.values())
    r["rss_by_size"] = {k: {"batch_peak_rss_mb": n["batch_peak_rss_mb"], "process_ru_maxrss_mb": n["process_ru_maxrss_mb"],
                            "batches": n["batches"], "expected_grades": n["expected_grades"]} for k, n in sizes.items()}
    r["scaling"] = sc
    r["scaling_2_workers"] = sc["ratio"]
    from gradesync.settings import AuditSettings
    r["projection"] = projection(ratio, grades_ratio, nd, courses, AuditSettings().batch_courses)
    r["projected_hours_10k"] = r["projection"]["hours"]
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--courses", type=int, default=100)
    args = ap.parse_args()
    print(json.dumps(run(args.courses, quick=args.quick), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
