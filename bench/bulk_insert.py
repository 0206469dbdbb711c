"""Benchmark: models.db.bulk_insert vs `session.execute(insert(model), rows)` for LMS snapshot results
(lms_result: text, floats, NULLs, datetimes) and findings (JSON evidence, enum category).

    .venv/bin/python bench/bulk_insert.py [--rows 100000] [--db URL] [--repeat 3]

Default database: a fresh SQLite file in a temp folder; pass a PostgreSQL URL for COPY. Each method
inserts the same rows into its own audit run, in its own transaction (commit included); the best of
`--repeat` runs counts. Prints rows/s per method and table and the ratio. Not a test.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

T0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)


def result_rows(run_id: int, n: int) -> list[dict]:
    return [dict(run_id=run_id, platform="canvas-bench", context_id=f"ctx-{i // 400}",
                 line_item_id=f"https://canvas.bench/api/lti/courses/{i // 400}/line_items/{i // 40}",
                 user_id=f"sub-{i % 40}", result_score=None if i % 10 == 0 else float(i % 101),
                 result_maximum=100.0, scoring_user_id=None, comment=None if i % 3 else "late\tresubmitted",
                 timestamp=T0 + timedelta(seconds=i)) for i in range(n)]


def finding_rows(run_id: int, n: int) -> list[dict]:
    import models as m

    return [dict(run_id=run_id, identity=f"missing_in_lms|canvas-bench|ctx-{i // 400}|rl-{i // 40}|sub-{i}",
                 category=m.FindingCategory.missing_in_lms, level="learner", platform="canvas-bench",
                 context_id=f"ctx-{i // 400}", resource_link_id=f"rl-{i // 40}", activity_id=f"act-{i % 10}",
                 line_item_id=f"li-{i // 40}", account_id=f"acc-{i}", lms_user_id=f"sub-{i}",
                 tool_score=float(i % 101), tool_maximum=100.0, lms_score=None, lms_maximum=None,
                 evidence={"passbacks": i % 3, "last_status": None, "completed_at": (T0 + timedelta(seconds=i)).isoformat()},
                 action="Resync the grade.") for i in range(n)]


def timed(engine, write, make, n: int) -> float:
    """Seconds for one transaction that writes n rows of a fresh run and commits (rows built before)."""
    import models as m

    with m.session_scope(engine) as s:
        run = m.AuditRun(kind="nightly")
        s.add(run)
        s.flush()
        run_id = run.id
    rows = make(run_id, n)
    start = time.perf_counter()
    with m.session_scope(engine) as s:
        write(s, rows)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--db", default=None, help="database URL (default: a temp SQLite file)")
    args = ap.parse_args()

    from sqlalchemy import insert

    import models as m
    from models.db import bulk_insert

    url = args.db or f"sqlite:///{Path(tempfile.mkdtemp(prefix='gs-bulk-')) / 'bench.db'}"
    m.upgrade_database(url)
    engine = m.make_engine(url)
    out = {}
    for model, make in ((m.LmsResult, result_rows), (m.Finding, finding_rows)):
        methods = {
            "session.execute(insert)": lambda s, rows: s.execute(insert(model), rows),
            "bulk_insert": lambda s, rows: bulk_insert(s, model, rows),
        }
        best = {name: min(timed(engine, write, make, args.rows) for _ in range(args.repeat))
                for name, write in methods.items()}
        rate = {name: args.rows / sec for name, sec in best.items()}
        ratio = rate["bulk_insert"] / rate["session.execute(insert)"]
        out[model.__tablename__] = {**{f"{k}_rows_per_s": round(v) for k, v in rate.items()}, "ratio": round(ratio, 2)}
        print(f"{engine.dialect.name} {model.__tablename__}: " + ", ".join(
            f"{name} {r:,.0f} rows/s" for name, r in rate.items()) + f" → bulk_insert {ratio:.2f}x")
    m.dispose_engine(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
