"""Benchmark 4: 1M completions through the real CLI, `gradesync import DIR` (SQLite file database).

    .venv/bin/python bench/import_cli.py [--rows 1000000]

The export is `bench/import_1m.py`'s `write_export` (rows/20 learners x 20 activities of one course).
The database is migrated first (`gradesync db upgrade`), so the timed command is the import alone:
process start, CSV parsing and checks, and the upserts. Afterwards the completion table is counted.
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from import_1m import write_export  # noqa: E402

CLI = str(Path(sys.executable).with_name("gradesync"))


def _toml(folder: Path, db: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    toml = folder / "gradesync.toml"
    toml.write_text(
        f'[database]\nurl = "sqlite:///{db}"\n\n[[platforms]]\nname = "bench"\nvendor = "canvas"\n'
        'issuer = "https://canvas.bench"\nclient_id = "1"\ntoken_url = "https://canvas.bench/login/oauth2/token"\n'
        'private_key_file = "key.pem"\nkey_id = "k1"\nallowed_hosts = ["canvas.bench"]\n', encoding="utf-8")
    return toml


def run(rows: int = 1_000_000) -> dict:
    """Generate the export, migrate, time `gradesync import`, count what landed."""
    with tempfile.TemporaryDirectory(prefix="gradesync-bench-import-") as tmp:
        folder = Path(tmp)
        db = folder / "bench.db"
        toml = _toml(folder, db)
        export = folder / "export"
        export.mkdir()
        t0 = time.perf_counter()
        write_export(export, rows)
        gen_s = time.perf_counter() - t0
        subprocess.run([CLI, "--config", str(toml), "db", "upgrade"], check=True, capture_output=True, cwd=folder)
        t0 = time.perf_counter()
        proc = subprocess.run([CLI, "--config", str(toml), "import", str(export)], capture_output=True, text=True,
                              cwd=folder)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"gradesync import exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        with sqlite3.connect(db) as conn:
            landed = conn.execute("select count(*) from completion").fetchone()[0]
        if landed != rows:
            raise AssertionError(f"{landed:,} completions in the database, {rows:,} exported")
        return {"rows": rows, "seconds": round(wall, 2), "rows_per_s": round(rows / wall),
                "csv_mb": round((export / "completions.csv").stat().st_size / 1e6), "generate_s": round(gen_s, 1),
                "database": "sqlite (file)", "command": "gradesync --config … import DIR"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    print(json.dumps(run(ap.parse_args().rows), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
