"""`gradesync demo`: the main job end to end on embedded defaults — sandbox LMS on loopback, its tool
records imported into SQLite, an audit through Prefect (temporary API), the digest on the console,
then the resync and a second audit that shows the resolved findings."""
from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from gradesync.findings import CATEGORIES

console = Console()


def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", help="Folder for the export, database, keys and reports (recreated)."),
    seed: int = typer.Option(7, "--seed", help="Sandbox world seed."),
    size: str = typer.Option("demo", "--size", help="Sandbox world size (tiny | demo)."),
    resync: bool = typer.Option(True, "--resync/--no-resync", help="Resync after the audit, then audit again."),
) -> None:
    """Run the demo: sandbox world → import → audit → digest → resync → audit again."""
    import asyncio
    import shutil

    from gradesync.audit.export import export_run
    from cli.audit import print_summary, run_audit
    from cli.common import quiet_prefect_defaults
    from gradesync.importer import import_folder
    from gradesync.settings import load_settings
    from sandbox_lms.server import start_sandbox
    from sandbox_lms.worlds import build_world
    import models as m

    t0 = time.perf_counter()
    quiet_prefect_defaults()
    # A one-shot run: audits here, and leaves no warm process behind (cli/warm.py).
    os.environ.setdefault("GRADESYNC_WARM", "off")
    if out.exists():
        shutil.rmtree(out)
    world = build_world(seed, size)
    with start_sandbox(world.state) as sandbox:
        console.rule(f"sandbox LMS at {sandbox.base_url} (world seed {seed}, {size})")
        toml = world.export(out, sandbox.base_url)
        with toml.open("a", encoding="utf-8") as fh:     # the demo's own embedded defaults
            fh.write(f'\n[database]\nurl = "sqlite:///{(out / "gradesync.db").resolve()}"\n'
                     f'\n[audit]\nreport_dir = "{(out / "reports").resolve()}"\n')
        settings = load_settings(toml)
        m.upgrade_database(settings.database.url)
        with m.session_scope(m.make_engine(settings.database.url)) as s:
            report = import_folder(s, out, settings)
        console.print("imported: " + ", ".join(f"{f.file} {f.rows}" for f in report.files)
                      + f" ({sum(f.rejected for f in report.files)} rejected)")

        console.rule("audit 1: course-audit flow over every course")
        first = run_audit(str(toml), None, None, None, True)
        print_summary(first)
        found = {f["identity"] for f in export_run(settings.database.url, first["run_id"])["findings"]}
        planted = {p.identity for p in world.ground_truth}
        console.print(f"planted cases found: {len(planted & found)}/{len(planted)}; "
                      f"findings that were not planted: {len(found - planted)}")

        if resync:
            from flows.resync import resync_pending
            console.rule("resync: pending missing_in_lms / score_mismatch tasks")
            from cli.resync import print_resync_summary
            started = m.utcnow()
            outcome = asyncio.run(resync_pending(config=str(toml)))
            print_resync_summary(outcome, settings.database.url, started)
            console.rule("audit 2: after the resync")
            second = run_audit(str(toml), None, None, None, True)
            print_summary(second)
            left = Counter(f["category"] for f in export_run(settings.database.url, second["run_id"])["findings"])
            console.print("still open: " + ", ".join(f"{c} {left[c]}" for c in CATEGORIES if left[c]))
    console.rule(f"demo finished in {time.perf_counter() - t0:.1f} s — reports in {out / 'reports'}")


demo_app = typer.Typer(add_completion=False)
demo_app.command("demo")(demo)
