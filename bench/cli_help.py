"""Benchmark: how long people wait for `gradesync --help` and every sub-command's `--help`.

    .venv/bin/python bench/cli_help.py [--runs 5]

Each command path (found by walking the CLI's groups, so a new command is measured too) is run as a
process — the installed console script, as people run it — `runs` times after one unmeasured warm-up
(page cache); its median wall time counts. `help_seconds` is the worst path's median (goal ≤ 0.5 s).
What it depends on: interpreter start plus importing Typer and Rich and rendering the help; the floor of
that on this machine (`python -c "import typer.main, typer.rich_utils"`) is measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLI = str(Path(sys.executable).with_name("gradesync"))
BOUND_S = 0.5
# Walks the command tree in its own process, so this one stays free of the CLI's imports.
LIST_PATHS = "import json, cli.main as c, cli.lazy as lazy; print(json.dumps(lazy.command_paths(c.app)))"
FLOOR = "import typer.main, typer.rich_utils, rich.console"


def command_paths() -> list[list[str]]:
    out = subprocess.run([sys.executable, "-c", LIST_PATHS], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def median_seconds(argv: list[str], runs: int) -> float:
    """Median wall time of `argv` as a process (after one unmeasured run); it must exit 0."""
    times = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, capture_output=True, check=True, timeout=60)
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(runs: int = 5) -> dict:
    """Median `--help` time of every command path; the worst one against the 0.5 s bound."""
    by_command = {" ".join(path) or "(root)": round(median_seconds([CLI, *path, "--help"], runs), 3)
                  for path in command_paths()}
    worst = max(by_command, key=by_command.__getitem__)
    return {
        "help_seconds": by_command[worst],
        "worst_command": worst,
        "bound_s": BOUND_S,
        "bound_ratio": round(BOUND_S / by_command[worst], 2),      # ≥ 1: every --help within the bound
        "root_seconds": by_command["(root)"],
        "by_command": by_command,
        "floor": {"python_s": round(median_seconds([sys.executable, "-c", "pass"], runs), 3),
                  "python_typer_rich_s": round(median_seconds([sys.executable, "-c", FLOOR], runs), 3)},
        "runs": runs,
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    print(json.dumps(run(ap.parse_args().runs), indent=2))
