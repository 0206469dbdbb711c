"""`gradesync --help` and every sub-command's `--help` import nothing heavy (what makes help slow):
checked by module, not by the clock, so it holds on any machine. bench/cli_help.py times it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("prefect", "great_expectations", "pandas", "numpy", "sqlalchemy", "sqlmodel", "alembic", "httpx",
         "jinja2", "slack_sdk", "pydantic", "cryptography", "jwt", "fastapi", "uvicorn", "lti_client", "models",
         "flows", "tasks", "sandbox_lms.worlds", "sandbox_lms.server", "gradesync.settings")

# In a fresh interpreter: walk every command path through the groups (mounting each lazy sub-app), ask
# each for --help, and name the heavy modules loaded after each step.
PROBE = """
import json, sys
import typer
import cli.main as c

heavy = json.loads(sys.argv[1])
def loaded():
    return sorted(h for h in heavy if h in sys.modules)
report = {"after_import": loaded(), "paths": []}
import cli.lazy as lazy
for path in lazy.command_paths(c.app):
    try:
        c.app([*path, "--help"], prog_name="gradesync")
    except SystemExit as e:
        code = e.code
    report["paths"].append({"path": path, "code": code, "heavy": loaded()})
print("REPORT " + json.dumps(report))
"""


def test_help_of_every_command_imports_nothing_heavy():
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("REPORT ")), None)
    assert line is not None, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(line.removeprefix("REPORT "))
    assert report["after_import"] == []
    paths = [p["path"] for p in report["paths"]]
    assert [] in paths and ["audit"] in paths and ["resync", "run"] in paths and ["sandbox", "serve"] in paths
    assert len(paths) >= 16
    assert all(p["code"] == 0 for p in report["paths"]), report["paths"]
    assert [(p["path"], p["heavy"]) for p in report["paths"] if p["heavy"]] == []
    assert "Usage: gradesync resync run" in done.stdout


def test_absent_options_stay_unconverted_and_given_ones_are_converted():
    """The light path (cli.lazy.AbsentOption) changes nothing for a value that was given."""
    from typer.testing import CliRunner

    import cli.main as cli

    runner = CliRunner()
    given = runner.invoke(cli.app, ["--config", "/nonexistent/gradesync.toml", "platforms"])
    assert given.exit_code == 1 and "/nonexistent/gradesync.toml" in given.output
    wrong = runner.invoke(cli.app, ["findings", "--run", "x"])
    assert wrong.exit_code == 2 and "--run" in wrong.output


def test_sandbox_size_help_names_every_world_size():
    from sandbox_lms.cli import SIZE_HELP
    from sandbox_lms.worlds import SIZES

    assert SIZE_HELP == f"World size: {' | '.join(SIZES)}."
