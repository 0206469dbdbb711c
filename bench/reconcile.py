"""Benchmark 3: reconcile + validate (GX suites) + diagnose at N expected grades.

    .venv/bin/python bench/reconcile.py --size 1000000 [--profile OUT.html]

Each size runs in a fresh subprocess (`--child`) so `ru_maxrss` is that size's own peak. The inputs are
synthetic but in the pipeline's shape: one canvas platform's `PlatformRecords`, `CourseRecords` with
graded links and one accepted passback per expected grade, and `CourseSnapshot`s of 10 line items x
30 learners (+ instructor and TA) per course. Each course has 1-5 % of its expected grades planted as
gaps (missing result, or an LMS score that differs). The step is the pipeline's own task bodies
(`tasks.audit_steps.reconcile/validate/diagnose.fn`), timed phase by phase; the GX import is paid
inside `validate` (lazily, as in a pipeline run) and reported on its own too.
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ITEMS, LEARNERS = 10, 30
PLATFORM = "canvas-bench"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"


def rss_mb() -> float:
    """Peak RSS of this process so far, MB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_inputs(n_expected: int, seed: int = 7, shared: int = 0):
    """(ToolRecords, snapshots, grants, planted gap count) for about n_expected expected grades.
    shared = 0: every link has its own activity (as the sandbox worlds build them); shared = K: every
    course links 10 of K activities shared by all courses (one content catalogue, many courses)."""
    from gradesync.audit.records import ToolRecords
    from gradesync.diagnosis.inputs import (Completion, CourseInfo, CourseRecords, CourseSnapshot, LinkInfo,
                                            Passback, PlatformRecords, ScoreGrant)
    from lti_client.types import LineItem, Member, Result

    rng = random.Random(seed)
    n_courses = max(1, round(n_expected / (ITEMS * LEARNERS)))
    base = "https://canvas.bench/api/lti/courses"
    t0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
    starts, ends = datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2025, 12, 31, tzinfo=timezone.utc)
    accounts, identities, completions = [], [], []
    courses, snapshots = {}, {}
    planted = 0
    for c in range(n_courses):
        ctx = f"ctx-{c}"
        acts = rng.sample(range(shared), ITEMS) if shared else [f"{c}-{k}" for k in range(ITEMS)]
        links = [LinkInfo(f"rl-{c}-{k}", f"act-{a}", True, f"Activity {a}") for k, a in enumerate(acts)]
        items = [LineItem(f"{base}/{c}/line_items/{c * ITEMS + k}", f"Activity {a}", 100.0, f"rl-{c}-{k}")
                 for k, a in enumerate(acts)]
        users = [f"u-{c}-{i}" for i in range(LEARNERS)]
        members = [Member(f"i-{c}", (INSTRUCTOR,)), Member(f"ta-{c}", (TA,))] + [Member(u, (LEARNER,)) for u in users]
        for i, u in enumerate(users):
            acc = f"acc-{c}-{i}"
            accounts.append((acc, f"learner{c}.{i}@bench.test"))
            identities.append((acc, u))
        gap_rate = rng.uniform(0.01, 0.05)
        results: dict[str, list] = {}
        passbacks = []
        for k, (link, item) in enumerate(zip(links, items)):
            rows = []
            for i, u in enumerate(users):
                score = float(rng.randrange(40, 101))
                done = t0 + timedelta(minutes=c * 7 + k * 3 + i)
                completions.append(Completion(f"acc-{c}-{i}", link.activity_id, score, 100.0, done,
                                              PLATFORM, ctx, link.resource_link_id))
                passbacks.append(Passback(u, link.resource_link_id, score, 100.0, done + timedelta(seconds=5), 200,
                                          "{}", f"acc-{c}-{i}", item.id))
                lms: float | None = score
                if rng.random() < gap_rate:
                    planted += 1
                    if rng.random() < 0.5:
                        continue                        # missing in the LMS: no result row at all
                    lms = score - 10.0                  # the LMS shows another score
                rows.append(Result(f"{item.id}/results/{u}", item.id, u, lms, 100.0))
            results[item.id] = rows
        courses[(PLATFORM, ctx)] = CourseRecords(CourseInfo(PLATFORM, ctx, f"Course {c}", starts, ends), links, passbacks)
        snapshots[(PLATFORM, ctx)] = CourseSnapshot(items, results, members)
    platforms = {PLATFORM: PlatformRecords.build(PLATFORM, "canvas", accounts, identities, completions)}
    return ToolRecords(platforms, courses), snapshots, {PLATFORM: ScoreGrant(True)}, planted


def child(n: int, profile_html: Path | None, shared: int = 0, only_reconcile: bool = False) -> dict:
    """Build inputs, then time the step phase by phase; one JSON line on stdout."""
    import prefect  # noqa: F401  (the pipeline process has it loaded; its memory is part of the baseline)

    from tasks.audit_steps import diagnose, reconcile, validate

    t0 = time.perf_counter()
    tool, snapshots, grants, planted = make_inputs(n, shared=shared)
    build_s = time.perf_counter() - t0
    base_rss = rss_mb()
    profiler = None
    if profile_html is not None:
        from pyinstrument import Profiler
        profiler = Profiler()
        profiler.start()
    phases: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def timed(name: str, fn, *args):
        w, c = time.perf_counter(), time.process_time()
        value = fn(*args)
        phases[name], cpu[name] = time.perf_counter() - w, time.process_time() - c
        return value

    rows = timed("reconcile", reconcile.fn, tool, snapshots)
    if only_reconcile:
        return {"expected_grades": sum(len(r) for r in rows.values()), "courses": len(tool.courses),
                "shared_activities": shared, "reconcile_s": round(phases["reconcile"], 2),
                "reconcile_cpu_s": round(cpu["reconcile"], 2)}
    # validate_run imports GX lazily; its import is timed apart here and still counted in the total.
    timed("gx_import", __import__, "great_expectations")
    outcome = timed("validate", validate.fn, rows, snapshots)
    diagnoses = timed("diagnose", diagnose.fn, tool, snapshots, grants, rows, outcome)
    total, total_cpu = sum(phases.values()), sum(cpu.values())
    if profiler is not None:
        profiler.stop()
        profile_html.write_text(profiler.output_html(), encoding="utf-8")
        profile_html.with_suffix(".txt").write_text(profiler.output_text(show_all=False), encoding="utf-8")
    expected = sum(len(r) for r in rows.values())
    findings = sum(len(d.findings) for d in diagnoses)
    # The bench must be able to fail: every planted gap is found by GX and diagnosed, nothing else.
    if len(outcome.gaps) != planted or findings != planted:
        raise AssertionError(f"planted {planted} gaps; GX found {len(outcome.gaps)}, diagnosis {findings}")
    return {"expected_grades": expected, "courses": len(tool.courses), "planted_gaps": planted,
            "gap_share": round(planted / expected, 4), "findings": findings, "warnings": len(outcome.warnings),
            "seconds": round(total, 2), "cpu_s": round(total_cpu, 2),
            "phases_s": {k: round(v, 2) for k, v in phases.items()},
            "phases_cpu_s": {k: round(v, 2) for k, v in cpu.items()},
            "peak_rss_mb": round(rss_mb(), 0), "inputs_rss_mb": round(base_rss, 0), "build_inputs_s": round(build_s, 1)}


def run(n: int, profile_html: Path | None = None, *, shared: int = 0, only_reconcile: bool = False) -> dict:
    """Run one size in a fresh subprocess and return its numbers."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--size", str(n), "--shared", str(shared)]
    if only_reconcile:
        cmd.append("--only-reconcile")
    if profile_html is not None:
        cmd += ["--profile", str(profile_html)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"reconcile bench at {n:,} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--profile", type=Path, default=None, help="pyinstrument HTML profile of the step")
    ap.add_argument("--shared", type=int, default=0, help="K activities shared by every course (0: one per link)")
    ap.add_argument("--only-reconcile", action="store_true", help="stop after the reconcile phase")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.size, args.profile, args.shared, args.only_reconcile)))
        return 0
    print(json.dumps(run(args.size, args.profile, shared=args.shared, only_reconcile=args.only_reconcile), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
