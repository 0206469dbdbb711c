"""The CLI's one error boundary: any exception a command lets through becomes one line on stderr with a
clear cause and exit code 1; its traceback goes to a log file named in that line (`--debug` prints it).

Commands do not catch errors themselves: they raise (ConfigError, a database error, a busy port …) and
`run_guarded` words them here, in one place. Library chatter (Prefect's task-failure tracebacks, Great
Expectations) goes to the same log file during a CLI run, so the console holds what people read.
"""
from __future__ import annotations

import errno
import logging
import os
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

EXIT_FAILED = 1
LOG_ENV = "GRADESYNC_LOG_FILE"
DEBUG_ENV = "GRADESYNC_DEBUG"
STATE_ENV = "GRADESYNC_STATE_DIR"


class CliError(Exception):
    """An error a command words itself: `message` is printed as is, with `code` as the exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code


def state_dir() -> Path:
    """gradesync's per-user state folder: $GRADESYNC_STATE_DIR, else $XDG_STATE_HOME/gradesync
    (~/.local/state/gradesync). The log file and the warm process (cli/warm.py) live there."""
    if os.environ.get(STATE_ENV):
        return Path(os.environ[STATE_ENV]).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "gradesync"


def log_file() -> Path:
    """$GRADESYNC_LOG_FILE, else gradesync.log in the state folder."""
    if os.environ.get(LOG_ENV):
        return Path(os.environ[LOG_ENV]).expanduser()
    return state_dir() / "gradesync.log"


def debug_enabled(argv: list[str] | None = None) -> bool:
    argv = sys.argv[1:] if argv is None else argv
    return "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0", "false")


def _first_line(text: str, limit: int = 300) -> str:
    text = text.strip()
    return (text.splitlines()[0] if text else "")[:limit]


def _database_message(e: BaseException) -> str | None:
    try:
        from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
    except ImportError:     # pragma: no cover - sqlalchemy is a dependency
        return None
    if isinstance(e, (NoSuchModuleError, ArgumentError)):
        return (f"database.url is not a database gradesync can use ({_first_line(str(e))}); "
                "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
    if isinstance(e, (OperationalError, DBAPIError)):
        cause = _first_line(str(getattr(e, "orig", None) or e))
        return f"cannot use the database ([database] url / GRADESYNC_DATABASE_URL): {cause}"
    return None


def explain(e: BaseException) -> tuple[str, bool]:
    """(the line to print, whether the traceback is worth logging) for an exception a command raised."""
    from gradesync.settings import ConfigError

    if isinstance(e, CliError):
        return str(e), False
    if isinstance(e, ConfigError):
        return str(e), False
    db = _database_message(e)
    if db:
        return db, True
    if isinstance(e, OSError) and e.errno == errno.EADDRINUSE:
        return "address already in use: another process listens on that port; choose another --port (0 picks a free one)", True
    if isinstance(e, RuntimeError) and str(e).startswith("Failed to reach API"):
        # Prefect's own wording when PREFECT_API_URL points at no server.
        return (f"cannot reach the Prefect API ({_first_line(str(e)).removeprefix('Failed to reach API at ')}): "
                "start it (`prefect server start`) or unset PREFECT_API_URL to use a temporary one"), True
    if isinstance(e, (FileNotFoundError, PermissionError, IsADirectoryError)) and e.filename:
        return f"{e.strerror}: {e.filename}", True
    try:
        import httpx
        if isinstance(e, httpx.HTTPError):
            where = getattr(getattr(e, "request", None), "url", None) if not isinstance(e, httpx.InvalidURL) else None
            return f"cannot reach {where.copy_with(query=None) if where else 'a server'}: {_first_line(str(e)) or type(e).__name__}", True
    except (ImportError, RuntimeError):
        pass
    return f"unexpected error: {type(e).__name__}: {_first_line(str(e))}", True


def record(e: BaseException) -> Path | None:
    """Append the traceback, with the command line, to the log file; its path, or None if unwritable."""
    path = log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"\n--- {datetime.now(timezone.utc).isoformat(timespec='seconds')} "
                     f"gradesync {' '.join(sys.argv[1:])}\n")
            fh.write("".join(traceback.format_exception(e)))
        return path
    except OSError:
        return None


def report(e: BaseException, *, debug: bool) -> int:
    """Print the one-line cause (and the log file's name); return the exit code."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True, soft_wrap=True, highlight=False)
    message, worth_logging = explain(e)
    lines = getattr(e, "problems", None) or [message]
    tail = ""
    if worth_logging:
        path = record(e)
        if debug:
            console.print("".join(traceback.format_exception(e)), markup=False)
        elif path is not None:
            tail = f" (traceback in {path}; --debug prints it)"
    for i, line in enumerate(lines):
        console.print(f"[red]error:[/red] {escape(line)}{escape(tail) if i == len(lines) - 1 else ''}")
    return getattr(e, "code", EXIT_FAILED) if isinstance(e, CliError) else EXIT_FAILED


def run_guarded(call: Callable[[], object]) -> int:
    """Run the CLI; an exception that escapes a command becomes one line and exit code 1."""
    try:
        call()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - this is the boundary: every error becomes one line
        return report(e, debug=debug_enabled())
    return 0


def route_library_logs_to_file() -> None:
    """Send the console output of Prefect's (and uvicorn's) loggers to the log file instead: task
    failures it logs with tracebacks (a handled LMS fault per course) are not for the console.
    With --debug, nothing is rerouted."""
    if debug_enabled():
        return
    path = log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access", "prefect"):
        logger = logging.getLogger(name)
        for h in list(logger.handlers):
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                logger.removeHandler(h)
                if handler not in logger.handlers:
                    logger.addHandler(handler)
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
