"""The root CLI stays light (no Prefect / Great Expectations at import) and mounts sub-apps lazily."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import gradesync.cli as cli

ROOT = Path(__file__).resolve().parents[2]


def test_help_does_not_import_heavy_packages():
    code = ("import sys, gradesync.cli as c\n"
            "try:\n    c.app(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('prefect', 'great_expectations', 'pandas', 'httpx') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr
    assert "import" in out.stdout and "platforms" in out.stdout and "db" in out.stdout


def test_console_script_is_installed_and_answers():
    exe = Path(sys.executable).parent / "gradesync"
    out = subprocess.run([str(exe), "db", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "upgrade" in out.stdout


def test_lazy_subcommand_is_listed_without_import_and_runs_when_called(tmp_path, monkeypatch):
    (tmp_path / "fake_subapp_mod.py").write_text(
        "import typer\napp = typer.Typer(no_args_is_help=True)\n"
        "@app.command()\ndef hello(name: str = 'world'):\n    'Say hello.'\n    print(f'hello {name}')\n"
        "@app.command()\ndef bye():\n    'Say bye.'\n    print('bye')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.LAZY_SUBCOMMANDS, "fake",
                        cli.LazySubcommand("fake_subapp_mod:app", "A fake sub-app for tests."))
    monkeypatch.delitem(sys.modules, "fake_subapp_mod", raising=False)
    runner = CliRunner()

    listing = runner.invoke(cli.app, ["--help"])
    assert listing.exit_code == 0 and "A fake sub-app for tests." in listing.output
    assert "fake_subapp_mod" not in sys.modules

    ran = runner.invoke(cli.app, ["fake", "hello", "--name", "ada"])
    assert ran.exit_code == 0, ran.output
    assert "hello ada" in ran.output
    assert "fake_subapp_mod" in sys.modules
