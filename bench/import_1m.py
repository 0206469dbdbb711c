"""Benchmark: import 1M completions (plus their accounts, identities, course and links) and re-import them.

    .venv/bin/python bench/import_1m.py [--rows 1000000] [--db URL]

Default database: a fresh SQLite file in a temp folder. Prints rows/s for the first import (all inserts)
and for the re-import (all unchanged). Not a test: it takes tens of seconds.
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

ACTIVITIES = 20


def write_export(folder: Path, rows: int) -> None:
    """A consistent export: rows/ACTIVITIES learners, each completing every activity of one course."""
    learners = max(1, rows // ACTIVITIES)
    base = "https://canvas.bench/api/lti/courses/1"

    def write(name: str, header: list[str], body) -> None:
        with (folder / name).open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(body)

    write("courses.csv", ["platform", "deployment_id", "context_id", "title", "lineitems_url", "memberships_url",
                          "starts_at", "ends_at"],
          [["bench", "dep-1", "ctx-1", "Bench course", f"{base}/line_items", f"{base}/names_and_roles",
            "2025-01-01T00:00:00Z", "2026-12-31T23:59:59Z"]])
    write("accounts.csv", ["account_id", "email", "name", "origin"],
          ([f"acc-{i}", f"learner{i}@bench.test", f"Learner {i}", "lti"] for i in range(learners)))
    write("identities.csv", ["account_id", "platform", "lms_user_id"],
          ([f"acc-{i}", "bench", f"sub-{i}"] for i in range(learners)))
    write("links.csv", ["platform", "context_id", "resource_link_id", "activity_id", "title", "graded"],
          ([["bench", "ctx-1", f"rl-{a}", f"act-{a}", f"Activity {a}", "true"] for a in range(ACTIVITIES)]))
    write("completions.csv", ["account_id", "activity_id", "score_given", "score_maximum", "completed_at",
                              "platform", "context_id", "resource_link_id"],
          ([f"acc-{i // ACTIVITIES}", f"act-{i % ACTIVITIES}", str(i % 101), "100",
            f"2025-03-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00+01:00", "bench", "ctx-1", f"rl-{i % ACTIVITIES}"]
           for i in range(learners * ACTIVITIES)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--db", default=None, help="database URL (default: a temp SQLite file)")
    args = ap.parse_args()

    from gradesync.importer import import_folder
    from gradesync.settings import load_settings
    from models import dispose_engine, make_engine, session_scope, upgrade_database

    with tempfile.TemporaryDirectory(prefix="gradesync-bench-") as tmp:
        tmpdir = Path(tmp)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (tmpdir / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
        url = args.db or f"sqlite:///{tmpdir / 'bench.db'}"
        (tmpdir / "gradesync.toml").write_text(
            f'[database]\nurl = "{url}"\n\n[[platforms]]\nname = "bench"\nvendor = "canvas"\n'
            'issuer = "https://canvas.bench"\nclient_id = "1"\ntoken_url = "https://canvas.bench/login/oauth2/token"\n'
            'private_key_file = "key.pem"\nkey_id = "k1"\nallowed_hosts = ["canvas.bench"]\n', encoding="utf-8")
        settings = load_settings(tmpdir / "gradesync.toml")
        export = tmpdir / "export"
        export.mkdir()
        t0 = time.perf_counter()
        write_export(export, args.rows)
        size_mb = (export / "completions.csv").stat().st_size / 1e6
        print(f"generated {args.rows:,} completions ({size_mb:.0f} MB) in {time.perf_counter() - t0:.1f} s")

        upgrade_database(url)
        engine = make_engine(url)
        for label in ("first import", "re-import (unchanged)"):
            t0, c0 = time.perf_counter(), time.process_time()
            with session_scope(engine) as session:
                report = import_folder(session, export, settings)
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            comp = next(r for r in report.files if r.file == "completions.csv")
            # CPU time is printed beside wall time: on a shared machine, wall time mostly measures the others.
            print(f"{label}: {dt:.1f} s wall, {cpu:.1f} s CPU (this process; the database server's not included); completions inserted={comp.inserted:,} updated={comp.updated:,} "
                  f"unchanged={comp.unchanged:,} rejected={comp.rejected}; "
                  f"{comp.rows / dt:,.0f} completion rows/s wall ({engine.dialect.name})")
            if report.rejections:
                print(f"  unexpected rejections: {report.rejections[:3]}")
                return 1
        dispose_engine(url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
