"""What every command shares: consoles, the invocation's settings and database, one-line failures.

Light on purpose (imported while `--help` is built): settings, SQLAlchemy and models are imported inside
the functions that need them."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from gradesync.settings import Settings

CONFIG_HELP = "gradesync.toml to use (default: $GRADESYNC_CONFIG, else ./gradesync.toml)."


def make_console(stderr: bool = False) -> Console:
    """A console whose width is stable when not on a terminal (pipes, CI logs, tests): 120 columns
    unless $COLUMNS says otherwise, rather than whatever the environment guesses."""
    from gradesync.console_text import stable_width

    return Console(stderr=stderr, width=stable_width(sys.stderr if stderr else sys.stdout))


console = make_console()
err_console = make_console(stderr=True)


@dataclass
class CliState:
    config: Optional[Path] = None
    _settings: "Settings | None" = None


def fail(message: str, code: int = 1) -> "typer.Exit":
    """Print one red line on stderr and return the Exit to raise (`raise fail(...)`)."""
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def settings_from(ctx: typer.Context, *, required: bool = False) -> "Settings":
    """The settings for this invocation (--config > $GRADESYNC_CONFIG > ./gradesync.toml), loaded once.
    A ConfigError becomes one red line and exit code 1 — never a traceback."""
    from gradesync.settings import ConfigError, load_settings

    state: CliState = ctx.find_root().obj or CliState()
    if state._settings is None:
        try:
            state._settings = load_settings(state.config, required=required)
        except ConfigError as e:
            for problem in e.problems[:-1]:       # every problem at once, one line each
                err_console.print(f"[red]error:[/red] {escape(problem)}", highlight=False, soft_wrap=True)
            raise fail(e.problems[-1]) from None
    return state._settings


def display_url(url: str) -> str:
    """A database URL safe to print (password hidden)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as "<invalid URL>", never raw
        return "<invalid URL>"


def open_database(settings: "Settings") -> "Engine":
    """The engine for the configured database, brought to the newest migration first.
    An unreachable or invalid database becomes one red line and exit code 1."""
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    from models import make_engine, upgrade_database

    url = settings.database.url
    try:
        upgrade_database(url)
        return make_engine(url)
    except (ArgumentError, NoSuchModuleError) as e:
        raise fail(f"database.url: invalid database URL {display_url(url)!r}: {e}") from None
    except DBAPIError as e:
        first = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
        raise fail(f"cannot use database {display_url(url)}: {first}") from None


def root_config(ctx: typer.Context | None, config: str | None) -> str | None:
    """This command's --config, else the root's `gradesync --config PATH`, else None (env / ./gradesync.toml)."""
    if config:
        return config
    state = ctx.find_root().obj if ctx is not None else None
    root = getattr(state, "config", None)
    return str(root) if root else None


def quiet_prefect_defaults() -> None:
    """Prefect's own logging at WARNING unless the user chose otherwise; no telemetry attempts offline."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    # The temporary server needs 12–20 s on 2 cores (stack-notes A.1); its default 20 s limit is too tight.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
