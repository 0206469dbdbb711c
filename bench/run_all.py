"""`make bench`: every benchmark in one run; prints a table and writes bench/results.json.

    .venv/bin/python bench/run_all.py [--quick] [--only extraction,reconcile,import,e2e,cli,resync,ondemand,night] [--out PATH]

Every number comes from this run, on this machine; each ratio is against a bound or a peer measured in
the same run. `--quick` shrinks every size (a smoke run of the scripts, not numbers to publish).
The machine's load average is recorded before and after each section: other processes sharing the
cores slow the wall-clock numbers down, the CPU-time numbers much less.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import cli_help  # noqa: E402
import end_to_end  # noqa: E402
import extraction  # noqa: E402
import import_cli  # noqa: E402
import ondemand  # noqa: E402
import night  # noqa: E402
import reconcile  # noqa: E402
import resync_10  # noqa: E402

SECTIONS = ("extraction", "reconcile", "import", "e2e", "cli", "resync", "ondemand", "night")
TARGETS = {"bound_ratio": 0.9, "bound_ratio_default_config": 0.95, "speedup": 10.0, "reconcile_s": 20.0, "reconcile_rss_mb": 2048.0,
           "help_seconds": cli_help.BOUND_S, "course_seconds_with_server": ondemand.BOUND_WITH_SERVER_S,
           "course_seconds_no_server": ondemand.BOUND_NO_SERVER_S,
           "night.requests_ratio": 0.3, "night.bound_ratio": 0.9, "night.worker_peak_rss_mb": 1024.0,
           "night.scaling_2_workers": 1.8, "night.projected_hours_10k": 6.0}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _section(results: dict, name: str, fn) -> None:
    before, t0 = _load(), time.perf_counter()
    print(f"… {name} (load average {before[0]})", flush=True)
    results[name] = fn()
    results[name]["_section_s"] = round(time.perf_counter() - t0, 1)
    results[name]["_load_before_after"] = [before, _load()]


def table(r: dict) -> str:
    """The results as a Markdown table (the README's Performance section pastes it)."""
    rows = [("benchmark", "measured", "target / reference")]
    x = r.get("extraction")
    if x:
        w = x["world"]
        d = x.get("default_config")
        if d:
            rows += [
                (f"extraction, default config (no tuning), {w['courses']} courses × {w['line_items'] // w['courses']} "
                 f"items × 30 learners (canvas), L={x['latency_ms']:g} ms, 403 beyond {x['in_flight_limit']} in flight",
                 f"{d['seconds']:.2f} s; **bound/actual {d['bound_ratio']:.2f}**"
                 + (f" (median of {', '.join(f'{v:.3f}' for v in x['default_config_runs'])})"
                    if len(x.get("default_config_runs", [])) > 1 else "")
                 + f"; {d['requests_made']:,} requests "
                 f"(minimum {x['requests_minimum']:,}), {d['throttled_answers']} throttled; in flight "
                 f"{d['client_stats']['in_flight_limit']['start']}",
                 f"≥ {TARGETS['bound_ratio_default_config']}, = minimum, 0 throttled"),
                ("… what it depends on: client / sandbox CPU per request; core each would need at the bound; "
                 "core share used; CPU reference",
                 f"{d['cpu_ms_per_request']['client']:.2f} / {d['cpu_ms_per_request']['sandbox']:.2f} ms "
                 f"(budget L÷C {x['cpu_budget_ms_per_request']:.2f}); need {d['core_need_at_bound']['client']:.2f} / "
                 f"{d['core_need_at_bound']['sandbox']:.2f} core; used {d['client_core_share']:.2f} / "
                 f"{d['sandbox_core_share']:.2f}; sandbox late answers {d['sandbox_late_answers']}; "
                 f"reference workload {x.get('cpu_reference_ms', float('nan')):.0f} ms CPU; load "
                 f"{x.get('_load_before_after', [[float('nan')]])[0][0]}", "—"),
            ]
        bl = x.get("by_latency")
        if bl:
            rows.append(("same, default config, 100 courses, by latency L (bound/actual)",
                         "; ".join(f"{k} ms: **{v['bound_ratio']:.2f}** (CPU {v['cpu_ms_per_request']['client']:.2f} "
                                   f"vs budget {v['cpu_budget_ms_per_request']:.2f} ms/request, "
                                   f"{v['throttled_answers']} throttled)" for k, v in bl.items()), "sensitivity"))
        rows += [
            (f"extraction, {w['courses']} courses × {w['line_items'] // w['courses']} items × 30 learners (canvas), "
             f"L={x['latency_ms']:g} ms, max_concurrency={x['in_flight_limit']} set by hand",
             f"{x['seconds']:.2f} s; bound {x['bound_s']:.2f} s; **bound/actual {x['bound_ratio']:.2f}**",
             f"≥ {TARGETS['bound_ratio']}"),
            ("requests made (service) vs minimum", f"{x['requests_made']:,} vs {x['requests_minimum']:,} "
             f"(+{x['token_requests']} token; {x['throttled_answers']} throttled)", "= minimum (+ tokens)"),
            ("client CPU per request (gradesync / bare httpx)",
             f"{x['cpu_ms_per_request']['client']:.2f} / {x['raw_httpx_floor']['cpu_ms_per_request']['client']:.2f} ms",
             f"budget L÷C = {x['cpu_budget_ms_per_request']:.2f} ms"),
            ("bare httpx, same GETs (transport floor)",
             f"{x['raw_httpx_floor']['seconds']:.2f} s; bound/actual {x['raw_httpx_floor']['bound_ratio']:.2f}", "—"),
        ]
        f = x.get("raw_fast_transport_floor")
        if f:
            rows.append(("bare httpx on lti_client.transport, same GETs",
                         f"{f['seconds']:.2f} s; bound/actual {f['bound_ratio']:.2f}; client CPU "
                         f"{f['cpu_ms_per_request']['client']:.2f} ms/request", "—"))
        f = x.get("raw_socket_floor")
        if f:
            rows.append(("bare asyncio sockets, same GETs, nothing parsed (this machine's and sandbox's ceiling)",
                         f"{f['seconds']:.2f} s; bound/actual {f['bound_ratio']:.2f}"
                         + (f" (median of {len(f['runs'])})" if f.get("runs") else "") + "; client CPU "
                         f"{f['cpu_ms_per_request']['client']:.2f} ms/request; default config reaches "
                         f"**{x['default_config_vs_socket_floor']:.2f}** of it", "—"))
        s = r.get("extraction_l60")
        if s:
            rows.append((f"same, {s['world']['courses']} courses at L={s['latency_ms']:g} ms (CPU budget "
                         f"{s['cpu_budget_ms_per_request']:.1f} ms/request)",
                         f"{s['seconds']:.2f} s; bound {s['bound_s']:.2f} s; bound/actual {s['bound_ratio']:.2f} "
                         f"(bare httpx {s['raw_httpx_floor']['bound_ratio']:.2f})", "sensitivity"))
        p = x.get("pylti1p3")
        if p:
            rows.append(("pylti1p3 extractor, same world (sync)",
                         f"{p['seconds']:.1f} s; {p['requests_made']:,} requests (+{p['token_requests']} token); "
                         f"**speed-up {x['speedup_vs_pylti1p3']:.1f}×**", f"≥ {TARGETS['speedup']:g}× (≤ 12× possible)"))
    for key in ("reconcile_100k", "reconcile_1m"):
        c = r.get(key)
        if c:
            ph = c["phases_s"]
            rows.append((f"reconcile + validate + diagnose, {c['expected_grades']:,} expected grades "
                         f"({c['gap_share']:.1%} gaps)",
                         f"**{c['seconds']:.1f} s** (CPU {c['cpu_s']:.1f} s), **peak RSS {c['peak_rss_mb']:,.0f} MB** — "
                         f"reconcile {ph['reconcile']:.1f}, GX import {ph['gx_import']:.1f}, "
                         f"validate {ph['validate']:.1f}, diagnose {ph['diagnose']:.1f} s",
                         "≤ 20 s, ≤ 2 GB at 1M" if key == "reconcile_1m" else "—"))
    sh = r.get("reconcile_shared")
    if sh:
        rows.append(("reconcile only, 50 activities shared by all courses",
                     "; ".join(f"{s['expected_grades']:,}: {s['reconcile_s']:.1f} s (CPU {s['reconcile_cpu_s']:.1f} s)"
                               for s in sh["sizes"]), "linear would be ×3"))
    i = r.get("import_1m")
    if i:
        rows.append((f"import {i['rows']:,} completions (`gradesync import`, SQLite)",
                     f"{i['seconds']:.1f} s; **{i['rows_per_s']:,} rows/s**", "—"))
    e = r.get("e2e")
    if e:
        parts = ", ".join(f"{k} {v:.1f} s ({e['phases_share'][k]:.0%})" for k, v in e["phases_s"].items() if v >= 0.05)
        rows.append((f"end to end: `gradesync audit`, demo world ({e['world']['courses']} courses)",
                     f"{e['seconds']:.1f} s: {parts}", "—"))
    h = r.get("cli")
    if h:
        rows.append(("`gradesync --help` and every sub-command's `--help`, worst median of "
                     f"{h['runs']} (process wall time)",
                     f"**{h['help_seconds']:.2f} s** (`{h['worst_command']}`; root {h['root_seconds']:.2f} s); "
                     f"floor: python + Typer/Rich import {h['floor']['python_typer_rich_s']:.2f} s",
                     f"≤ {TARGETS['help_seconds']} s"))
    rs = r.get("resync")
    if rs:
        for key, label in (("with_server", "with a running Prefect server"),
                           ("no_server", "no Prefect server (its temporary server starts)")):
            x = rs[key]
            bound = f"≤ {x['bound_s']:.1f} s (LMS + {rs['bound_beyond_lms_s']:g} s)"
            rows.append((f"`gradesync resync run`, {rs['tasks']} due tasks (Canvas + Moodle), "
                         f"L={rs['latency_ms']:g} ms, {label}",
                         f"**{x['seconds']:.1f} s** (CPU {x['cpu_s']:.1f} s); the LMS's own latency "
                         f"{x['lms_latency_s']:.2f} s ({x['requests']} requests × L)",
                         bound if key == "with_server" else "—"))
    o = r.get("ondemand")
    if o:
        shape = o["course_shape"]
        for key, label in (("with_server", "a `prefect server start` reachable"),
                           ("no_server", "no Prefect server (temporary one)")):
            c = o[key]
            first = f"; first, cold run {c['first_cold_s']:.1f} s" if key == "no_server" else ""
            rows.append((f"on-demand `gradesync audit --course` ({shape['members']} members × {shape['items']} "
                         f"items), {label}: served by the warm process, median of {o['runs']}",
                         f"**{o[f'course_seconds_{key}']:.2f} s**{first}; `--no-warm` (peer) "
                         f"{c['peer_no_warm_s']:.1f} s",
                         f"≤ {TARGETS[f'course_seconds_{key}']:g} s"))
    rows += night_rows(r.get("night"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(3)]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def night_rows(n: dict | None) -> list[tuple[str, str, str]]:
    """The `night` section's rows: each figure with its goal, and what it depends on."""
    if not n:
        return []
    w, t = n["world"], TARGETS
    n1, n2, b, sc, pj = n["nights"]["full"], n["second_night"], n["bound"], n["scaling"], n["projection"]
    size = f"{w['courses']} courses × {w['items']} items × {w['learners']} learners (canvas), L={w['latency_ms']:g} ms"
    not_read = ", ".join(f"{k} {v}" for k, v in n2["not_read"].items()) or "none"
    rss = "; ".join(f"{k} courses: batch {v['batch_peak_rss_mb']:.0f} MB, process {v['process_ru_maxrss_mb']:.0f} MB "
                    f"({v['batches']} batches)" for k, v in n["rss_by_size"].items())
    one, two = sc["1_worker"], sc["2_worker"]
    lat = "; ".join(f"{k} ms: {v['overlapped_h']:.1f} h (serial {v['serial_h']:.1f} h)" for k, v in pj["by_latency_ms"].items())
    i = pj["inputs"]
    return [
        (f"night.requests_ratio: second unchanged night ÷ full read, {size}",
         f"**{n['requests_ratio']:.2f}** ({n2['courses_read']} of {n2['courses']} courses read; not read: {not_read}; "
         f"clean world; the planted world watches {n2['planted_world_share_watched_nightly']:.0%} of its courses nightly → ≈ {n2['planted_world_expected_share_read']:.2f})",
         f"≤ {t['night.requests_ratio']}"),
        (f"night.bound_ratio: requests × L ÷ {b['key_in_flight']} vs Σ extract, full night, default batch size "
         f"({b['batches']} batch of {b['batch_courses']} courses)",
         f"**{n['bound_ratio']:.2f}** ({b['bound_s']:.1f} s vs {b['extract_s']:.1f} s; vs the {b['nightly_slots_held']} "
         f"slots the nightly holds {b['ratio_vs_slots_held']:.2f}; {b['ms_per_request']:.1f} ms/request); "
         f"batches of {b['small_batches']['batch_courses']}: {b['small_batches']['ratio']:.2f} "
         f"({b['small_batches']['ms_per_request']:.1f} ms/request); other steps "
         + ", ".join(f"{k} {v:.1f} s" for k, v in b["steps_s"].items() if k != "extract"),
         f"≥ {t['night.bound_ratio']}"),
        ("night.worker_peak_rss_mb: a process running batches, two sizes, same batch size",
         f"**{n['worker_peak_rss_mb']:.0f} MB** ({rss})", f"≤ {t['night.worker_peak_rss_mb']:g}, flat"),
        (f"night.scaling_2_workers: canvas + moodle, {sc['courses_per_platform']} courses each, nightly deployment, "
         f"--limit {sc['worker_limit']} per worker",
         f"**{n['scaling_2_workers']:.2f}×** ({one['wall_s']:.0f} s on 1 worker vs {two['wall_s']:.0f} s on 2; "
         f"batches by worker {two['batches_by_worker']})", f"≥ {t['night.scaling_2_workers']}×"),
        (f"night.projected_hours_10k: 10,000 courses × {i['learners_per_course']} learners × {i['items_per_course']} "
         f"items, one Canvas key ({i['nightly_slots']} of {i['key_in_flight']} slots nightly), at 250 ms/request",
         f"**{n['projected_hours_10k']:.1f} h** — by latency {lat}; {i['typical_requests']:,} of {i['full_requests']:,} "
         f"requests; CPU {i['cpu_us_per_expected_grade']:.0f} µs/expected grade → {i['typical_cpu_h']:.1f} h",
         f"≤ {t['night.projected_hours_10k']:g} h"),
    ]


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: check the scripts, not numbers to publish")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    args = ap.parse_args()
    only = set(args.only.split(","))
    q = args.quick
    t0 = time.perf_counter()
    r: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpu_count": os.cpu_count(),
               "machine": {"python": platform.python_version(), "platform": platform.platform(),
                           "commit": _git_commit()},
               "quick": q}
    if "extraction" in only:
        _section(r, "extraction", lambda: extraction.run(60 if q else 500, latencies=(5.0, 20.0, 100.0),
                                                         latency_courses=20 if q else 100, repeats=1 if q else 3))
        # Sensitivity: the same client at 3× the latency (CPU budget per request 3× larger).
        _section(r, "extraction_l60", lambda: extraction.run(30 if q else 150, peer=False, latency_ms=60.0,
                                                                repeats=1))
    if "reconcile" in only:
        _section(r, "reconcile_100k", lambda: reconcile.run(10_000 if q else 100_000))
        _section(r, "reconcile_1m", lambda: reconcile.run(30_000 if q else 1_000_000))
        _section(r, "reconcile_shared", lambda: {"shared_activities": 50, "sizes": [
            reconcile.run(n, shared=50, only_reconcile=True) for n in ((10_000, 30_000) if q else (100_000, 300_000))]})
    if "import" in only:
        _section(r, "import_1m", lambda: import_cli.run(20_000 if q else 1_000_000))
    if "e2e" in only:
        _section(r, "e2e", end_to_end.run)
    if "cli" in only:
        _section(r, "cli", lambda: cli_help.run(2 if q else 5))
    if "resync" in only:
        _section(r, "resync", resync_10.run)
    if "ondemand" in only:
        _section(r, "ondemand", lambda: ondemand.run(runs=1 if q else 3))
    if "night" in only:
        _section(r, "night", lambda: night.run(quick=q))
    if only != set(SECTIONS) and args.out.exists():
        # A partial run updates its own sections and keeps every other section's last numbers, each with
        # the date it was measured (`_sections_date`), so `--only extraction` does not wipe the rest.
        fresh = [k for k, v in r.items() if isinstance(v, dict) and "_section_s" in v]
        previous = json.loads(args.out.read_text(encoding="utf-8"))
        dates = previous.get("_sections_date", {})
        for key, value in previous.items():
            if key not in r and key not in ("total_s", "table", "_sections_date"):
                r[key] = value
                dates.setdefault(key, previous.get("date"))
        r["_sections_date"] = {**dates, **{k: r["date"] for k in fresh}}
    r["total_s"] = round(time.perf_counter() - t0, 1)
    r["table"] = table(r)
    args.out.write_text(json.dumps(r, indent=2) + "\n", encoding="utf-8")
    print()
    print(r["table"])
    print(f"\n{r['cpu_count']} CPUs, {r['date']}, {r['total_s']:.0f} s in all; written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
