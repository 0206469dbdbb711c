"""Benchmark 5: the demo world through the real CLI — `gradesync import`, then `gradesync audit`.

    .venv/bin/python bench/end_to_end.py

The demo world (seed 7) is served by `bench/sandbox_proc.py` in its own process (no added latency) and
exported there. Prefect runs on its temporary server with a bench-only PREFECT_HOME whose database is
migrated before the clock starts (`prefect server database upgrade -y`), as on any machine after the
first run. How the phases are timed: after the CLI exits, the flow run and task runs are read from that
PREFECT_HOME's SQLite database (start/end times Prefect recorded).
- Prefect start-up = CLI launch → flow run start (Python + CLI imports, config/DB checks, temporary API
  server start, flow run creation);
- extraction = first extract/score-grant task start → last one's end;
- the other phases are their task's duration (load-tool-records, reconcile, validate, diagnose,
  persist-run, publish-report, send-alerts); "flow, between tasks" = flow duration − those;
- shutdown = flow end → CLI exit (summary printing, temporary server stop).
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from extraction import SandboxProcess  # noqa: E402

CLI = str(Path(sys.executable).with_name("gradesync"))
PREFECT = str(Path(sys.executable).with_name("prefect"))
TASK_PHASES = [("load-tool-records", "tool records (DB read)"), ("reconcile", "reconcile"),
               ("validate", "validation (GX)"), ("diagnose", "diagnosis"), ("persist-run", "persistence"),
               ("publish-report", "report"), ("send-alerts", "alerts")]


def _ts(value) -> float:
    """A Prefect SQLite timestamp (UTC text) as epoch seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()


def _runs(prefect_db: Path) -> tuple[tuple[float, float], list[tuple[str, float, float]]]:
    """(flow start, end) of the newest course-audit run and its task runs (name, start, end)."""
    with sqlite3.connect(prefect_db) as conn:
        fid, fstart, fend = conn.execute(
            "select id, start_time, end_time from flow_run where name is not null and flow_id in "
            "(select id from flow where name = 'course-audit') order by created desc limit 1").fetchone()
        tasks = conn.execute("select name, start_time, end_time from task_run where flow_run_id = ?",
                             (fid,)).fetchall()
    return (_ts(fstart), _ts(fend)), [(n, _ts(s), _ts(e)) for n, s, e in tasks if s and e]


def run(seed: int = 7) -> dict:
    """Serve + export the demo world, import it, run the audit through the CLI, split its time."""
    with tempfile.TemporaryDirectory(prefix="gradesync-bench-e2e-") as tmp:
        root = Path(tmp)
        out = root / "export"
        env = dict(os.environ, PREFECT_HOME=str(root / "prefect-home"), PREFECT_LOGGING_LEVEL="WARNING",
                   PREFECT_SERVER_ANALYTICS_ENABLED="false")
        env.pop("PREFECT_API_URL", None)
        with SandboxProcess(out, "--size", "demo", "--seed", str(seed), "--full-export") as sb:
            toml = out / "gradesync.toml"
            with toml.open("a", encoding="utf-8") as fh:
                fh.write(f'\n[database]\nurl = "sqlite:///{root / "gradesync.db"}"\n'
                         f'\n[audit]\nreport_dir = "{root / "reports"}"\n')
            subprocess.run([PREFECT, "server", "database", "upgrade", "-y"], env=env, check=True,
                           capture_output=True, cwd=root)
            t0 = time.perf_counter()
            imp = subprocess.run([CLI, "--config", str(toml), "import", str(out)], env=env, cwd=root,
                                 capture_output=True, text=True)
            import_s = time.perf_counter() - t0
            if imp.returncode not in (0, 2):
                raise RuntimeError(f"import failed ({imp.returncode}): {imp.stdout[-1500:]} {imp.stderr[-1500:]}")
            launch, t0 = time.time(), time.perf_counter()
            aud = subprocess.run([CLI, "audit", "--config", str(toml), "--json", str(root / "run.json")],
                                 env=env, cwd=root, capture_output=True, text=True)
            total = time.perf_counter() - t0
            exited = launch + total
            if aud.returncode not in (0, 3):     # 3 = completed, some courses unverified (planted)
                raise RuntimeError(f"audit failed ({aud.returncode}): {aud.stdout[-1500:]} {aud.stderr[-1500:]}")
            courses = len(json.loads((root / "run.json").read_text()).get("courses", []))
        (fstart, fend), tasks = _runs(root / "prefect-home" / "prefect.db")
        phases: dict[str, float] = {"Prefect start-up": fstart - launch}
        ext = [(s, e) for n, s, e in tasks if n.startswith(("extract-", "score-grant"))]
        phases["extraction"] = (max(e for _, e in ext) - min(s for s, _ in ext)) if ext else 0.0
        for prefix, label in TASK_PHASES:
            phases[label] = sum(e - s for n, s, e in tasks if n.startswith(prefix))
        in_flow = sum(v for k, v in phases.items() if k != "Prefect start-up")
        phases["flow, between tasks"] = (fend - fstart) - in_flow
        phases["shutdown"] = exited - fend
        durations = sorted(e - s for n, s, e in tasks if n.startswith("extract-"))
        return {"seconds": round(total, 2), "import_s": round(import_s, 2),
                "extract_course_task_s": {"count": len(durations), "sum": round(sum(durations), 2),
                                          "median": round(durations[len(durations) // 2], 3) if durations else None,
                                          "max": round(durations[-1], 3) if durations else None},
                "world": {k: sb.world["summary"][k] for k in ("courses", "members", "line_items", "results",
                                                              "expected_grades")},
                "courses_in_run": courses, "extract_tasks": len(ext),
                "phases_s": {k: round(v, 2) for k, v in phases.items()},
                "timeline": [f"{n}: +{s - fstart:.2f} s for {e - s:.2f} s" for n, s, e in sorted(tasks, key=lambda t: t[1])],
                "phases_share": {k: round(v / total, 3) for k, v in phases.items()}}


def main() -> int:
    print(json.dumps(run(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
