"""The root CLI stays light (no Prefect / Great Expectations at import) and mounts sub-apps lazily."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import cli.main as cli

ROOT = Path(__file__).resolve().parents[2]


def test_help_does_not_import_heavy_packages():
    code = ("import sys, cli.main as c\n"
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


def _leaf_commands() -> list[list[str]]:
    """Every runnable command path of the CLI, lazy sub-apps included (walked through the group itself)."""
    import typer

    root = typer.main.get_command(cli.app)

    def walk(cmd, ctx, path):
        if not hasattr(cmd, "list_commands"):
            return [path]
        out = []
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            out += walk(sub, cmd.context_class(sub, parent=ctx, info_name=name), [*path, name])
        return out

    return walk(root, root.context_class(root, info_name="gradesync"), [])


def test_every_sub_command_accepts_config():
    leaves = _leaf_commands()
    assert ["import"] in leaves and ["db", "upgrade"] in leaves and ["platforms"] in leaves
    assert ["resync", "plan"] in leaves and ["sandbox", "export"] in leaves and len(leaves) >= 12
    runner = CliRunner()
    for path in leaves:
        out = runner.invoke(cli.app, [*path, "--help"], terminal_width=200).output
        assert "--config" in out, (path, out)


def test_an_unexpected_error_is_one_line_naming_the_log_file_with_the_traceback(tmp_path):
    code = ("import sys, typer, cli.main as c\n"
            "app = typer.Typer()\n"
            "@app.command()\ndef boom():\n    raise RuntimeError('kaboom\\nsecond line')\n"
            "c.LAZY_SUBCOMMANDS['boom'] = c.LazySubcommand('__main__:app', 'Fails.')\n"
            "sys.argv = ['gradesync', *sys.argv[1:]]\n"
            "c.main()\n")
    log = tmp_path / "gs.log"
    env = {"GRADESYNC_LOG_FILE": str(log), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code, "boom"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (f"error: unexpected error: RuntimeError: kaboom (traceback in {log}; "
                                   "--debug prints it)")
    assert "RuntimeError: kaboom" in log.read_text() and "Traceback (most recent call last)" in log.read_text()
    debug = subprocess.run([sys.executable, "-c", code, "--debug", "boom"], cwd=ROOT, capture_output=True,
                           text=True, timeout=60, env=env)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr


def test_output_width_is_stable_when_not_on_a_terminal():
    env = {"PATH": "/usr/bin:/bin"}
    code = "import cli.main as c; print(c.console.width, c.err_console.width)"
    plain = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert plain.stdout.split() == ["120", "120"]
    narrow = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env={**env, "COLUMNS": "90"})
    assert narrow.stdout.split() == ["90", "90"]
