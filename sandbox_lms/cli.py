"""`gradesync sandbox …`: serve a generated world over HTTP on loopback, or export its tool records.

    gradesync sandbox serve [--host 127.0.0.1] [--port 8765] [--world SEED] [--size demo] [--profile canvas …] [--export DIR]
    gradesync sandbox export --world SEED [--size demo] [--base-url http://127.0.0.1:8765] DIR
"""
from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Optional
from urllib.parse import urlsplit

import typer

if TYPE_CHECKING:
    from sandbox_lms.worlds import World

DEFAULT_PORT = 8765
# Written out so `--help` does not build the world machinery (a test checks it against worlds.SIZES).
SIZE_HELP = "World size: tiny | demo | large | bench."
app = typer.Typer(help="The sandbox LMS: a local LTI Advantage platform serving generated worlds.",
                  no_args_is_help=True, add_completion=False)


def _world(seed: int, size: str, profiles: list[str] | None, clean: bool) -> "World":
    from sandbox_lms.worlds import SIZES, build_world

    if size not in SIZES:
        raise typer.BadParameter(f"unknown size {size!r} (expected one of {', '.join(SIZES)})", param_hint="--size")
    try:
        return build_world(seed, size, clean=clean, **({"profiles": profiles} if profiles else {}))
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def _describe(world: "World", base_url: str) -> str:
    s = world.summary()
    lines = [f"world seed {world.seed} ({world.size}{', clean' if world.clean else ''}): "
             f"{s['courses']} courses, {s['members']} members, {s['line_items']} line items, "
             f"{s['results']} results, {s['expected_grades']} expected grades, "
             f"{s['planted_total']} planted findings"]
    for reg in world.state.registrations.values():
        lines.append(f"  {reg.name:<18} {reg.profile:<10} {len(reg.courses):>4} courses  {base_url}/{reg.name}")
    planted = ", ".join(f"{c} {n}" for c, n in s["planted"].items() if n)
    if planted:
        lines.append(f"  planted: {planted}")
    return "\n".join(lines)


def _port_is_free(host: str, port: int) -> None:
    """Raise OSError(EADDRINUSE) when `port` is taken (the CLI's error boundary words it in one line)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)     # as uvicorn does: TIME_WAIT is no conflict
        s.bind((host, port))


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (loopback by default)."),
    port: int = typer.Option(DEFAULT_PORT, help="Port; 0 picks a free one."),
    world: int = typer.Option(1, "--world", help="World seed."),
    size: str = typer.Option("demo", help=SIZE_HELP),
    profile: Optional[list[str]] = typer.Option(None, "--profile", help="Keep only registrations of this "
                                                "profile (canvas, moodle, d2l, blackboard, spec); repeatable."),
    clean: bool = typer.Option(False, help="No planted gaps: zero findings expected."),
    export: Optional[Path] = typer.Option(None, "--export", help="Also write the tool records, keys and "
                                          "gradesync.toml for this server into DIR."),
    keys: Optional[Path] = typer.Option(None, "--keys", help="Accept the tool keys of an earlier `sandbox export` "
                                        "of this world (DIR or DIR/keys) instead of fresh ones."),
) -> None:
    """Build a world and serve it until interrupted.

    A world's keys are fresh on every build: to serve a world exported earlier (`sandbox export --world N
    DIR`), pass `--keys DIR` so the server accepts that export's keys."""
    from sandbox_lms.server import start_sandbox

    _port_is_free(host, port)                           # before building the world: a busy port fails fast
    w = _world(world, size, profile, clean)
    if keys is not None:
        if export is not None:
            raise typer.BadParameter("--keys serves an earlier export; --export writes a new one: give one of them")
        from sandbox_lms.worlds.keys import load_public_keys

        for name, pem in load_public_keys(keys, list(w.state.registrations)).items():
            w.state.registrations[name].public_key_pem = pem
    running = start_sandbox(w.state, host, port)        # binds first: the real port is known before export
    try:
        typer.echo(f"Sandbox LMS at {running.base_url}")
        typer.echo(_describe(w, running.base_url))
        if export is not None:
            toml = w.export(export, running.base_url)
            typer.echo(f"exported tool records and keys to {export}; config: {toml}")
        typer.echo("Ctrl-C to stop.")
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()


@app.command("export")
def export_cmd(
    directory: Path = typer.Argument(..., help="Folder to write (created if missing)."),
    world: int = typer.Option(1, "--world", help="World seed."),
    size: str = typer.Option("demo", help=SIZE_HELP),
    base_url: str = typer.Option(f"http://127.0.0.1:{DEFAULT_PORT}", help="Where the sandbox serves this world."),
    profile: Optional[list[str]] = typer.Option(None, "--profile", help="Keep only registrations of this profile."),
    clean: bool = typer.Option(False, help="No planted gaps: zero findings expected."),
) -> None:
    """Write a world's tool records (CSVs), fresh keys and a gradesync.toml pointing at the sandbox."""
    w = _world(world, size, profile, clean)
    toml = w.export(directory, base_url.rstrip("/"))
    typer.echo(_describe(w, base_url.rstrip("/")))
    typer.echo(f"wrote {directory}: courses/accounts/identities/links/completions/passbacks.csv, keys/, {toml.name}")
    port = urlsplit(base_url).port or 80
    typer.echo(f"serve it with: gradesync sandbox serve --world {world} --size {size}{' --clean' if clean else ''}"
               + "".join(f" --profile {p}" for p in profile or []) + f" --port {port} --keys {directory}")


if __name__ == "__main__":
    app()
