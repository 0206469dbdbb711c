"""The `gradesync` command line (Typer + Rich).

Kept light on purpose: nothing heavy (Prefect, Great Expectations, the LTI client) is imported at module
level, and the sub-apps other modules provide are mounted lazily (see LAZY_SUBCOMMANDS below),
so `gradesync --help` answers in a fraction of a second.

Errors: commands raise; `main` runs everything inside one error boundary (cli/errors.py) that
prints one line with the cause, logs the traceback to a file named in that line, and exits 1.
Every sub-command accepts `--config PATH` (added by cli/lazy.py, see `with_config_option`).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import (CONFIG_HELP, CliState, console, display_url, err_console, fail, make_console,  # noqa: F401
                        open_database, settings_from)
from cli.lazy import LazyGroup, LazySubcommand

# ==========================================================================================
# SUB-APPS MOUNTED BY OTHER MODULES — add one line each, keep the import lazy.
#   name: LazySubcommand("package.module:attribute", "one-line help for `gradesync --help`")
# The target is a typer.Typer (or a click command); it is imported only when the command runs,
# so a heavy module (Prefect, Great Expectations) never slows `gradesync --help` down.
# ==========================================================================================
LAZY_SUBCOMMANDS: dict[str, LazySubcommand] = {
    "audit": LazySubcommand("cli.audit:audit_app", "Audit grade sync now (a course-audit flow run)."),
    "findings": LazySubcommand("cli.audit:findings_app", "Show the findings of an audit run."),
    "night": LazySubcommand("cli.night:night_app", "Run the nightly audit now (night plan; --full reads all)."),
    "resync": LazySubcommand("cli.resync:app", "Plan, approve and run resyncs of missing or wrong grades."),
    "sandbox": LazySubcommand("sandbox_lms.cli:app", "The sandbox LMS: serve or export a generated world."),
    "demo": LazySubcommand("cli.demo:demo_app", "Run the demo end to end on the sandbox LMS."),
    "serve": LazySubcommand("cli.serve:serve_app", "Serve the deployments (nightly schedule) from this process."),
    "warm": LazySubcommand("cli.warm:app", "The warm process that runs on-demand audits in seconds: status, stop."),
}


class RootGroup(LazyGroup):
    subcommands = LAZY_SUBCOMMANDS


# ---------------------------------------------------------------- the root app and its own commands

app = typer.Typer(
    name="gradesync",
    cls=RootGroup,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,     # locals may hold secrets (webhook URLs, tokens)
)
db_app = typer.Typer(help="Database schema: migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.callback()
def _root(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", "-c", metavar="PATH", help=CONFIG_HELP),
    debug: bool = typer.Option(False, "--debug", help="Print tracebacks of errors (they always go to the log file)."),
) -> None:
    """Audit LTI grade sync: find grades that never reached the LMS gradebook, explain why, resync them.

    Configuration: gradesync.toml ([database], [slack], [[platforms]]); env GRADESYNC_DATABASE_URL and
    GRADESYNC_SLACK_WEBHOOK_URL override the file.
    """
    if ctx.obj is None:
        ctx.obj = CliState(config=config)
    elif config is not None:
        ctx.obj.config = config


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Bring the database to the newest schema (Alembic migrations; safe to repeat).

    Every other command does this on its first run too. The database is [database] url in
    gradesync.toml, or $GRADESYNC_DATABASE_URL, default sqlite:///gradesync.db.
    """
    from models import current_revision

    settings = settings_from(ctx)
    open_database(settings)
    rev = current_revision(settings.database.url)
    console.print(f"database {escape(display_url(settings.database.url))} is at revision [bold]{rev}[/bold] (head)",
                  soft_wrap=True, highlight=False)


@app.command("import")
def import_cmd(
    ctx: typer.Context,
    folder: Path = typer.Argument(..., metavar="DIR", help="Folder with the tool's CSV export."),
    show: int = typer.Option(50, "--show", min=0, metavar="N",
                             help="Print at most N rejected rows (all are kept in import_rejection)."),
    full: bool = typer.Option(False, "--full",
                              help="DIR is a full export of the platforms its courses.csv names: retire their "
                                   "courses, links, identities and completions that it no longer holds."),
) -> None:
    """Import the tool's records from the CSV export in DIR.

    Files (header row, UTF-8, timestamps ISO 8601 with a zone): courses.csv, accounts.csv, identities.csv,
    links.csv, completions.csv and optionally passbacks.csv. Re-importing the same files changes nothing;
    changed rows are updated. Every bad row is printed as FILE:LINE: REASON and kept in the database.
    By default an export is a delta (added and updated, nothing removed); with --full, rows it no longer
    holds are retired (kept for history, ignored by the audit) until an export holds them again.

    Exit code: 0 every row imported, 2 some rows rejected, 1 fatal (folder or required file missing, a
    header without a required column, bad configuration, database unreachable).
    """
    from sqlalchemy.exc import DBAPIError

    from gradesync.importer import ImportFatal, check_folder, import_folder
    from models import session_scope

    settings = settings_from(ctx, required=True)
    if not settings.platforms:
        raise fail(f"{settings.source_path}: no [[platforms]] configured: every row would be rejected")
    try:
        check_folder(folder)            # before touching the database: a typo in DIR writes nothing
    except ImportFatal as e:
        raise fail(str(e)) from None
    engine = open_database(settings)
    try:
        with session_scope(engine) as session:
            report = import_folder(session, folder, settings, full=full)
    except ImportFatal as e:
        raise fail(str(e)) from None
    except DBAPIError as e:
        first = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
        raise fail(f"database error during import: {first}") from None

    table = Table(title=f"import batch {report.batch_id}: {folder}", title_justify="left", pad_edge=False)
    columns = ("file", "rows", "inserted", "updated", "unchanged", "rejected") + (("retired",) if full else ())
    for col in columns:
        if col == "file":
            table.add_column(col, justify="left", min_width=len("completions.csv"))   # never cut a file name
        else:
            table.add_column(col, justify="right")
    for f in report.files:
        retired = (("-" if f.retired is None else f"{f.retired:,}"),) if full else ()
        if f.skipped and not f.rows:
            table.add_row(f.file, "-", "-", "-", "-", str(f.rejected) if f.rejected else "-", *retired,
                          style="yellow" if f.rejected else "dim")
            continue
        table.add_row(f.file, f"{f.rows:,}", f"{f.inserted:,}", f"{f.updated:,}", f"{f.unchanged:,}",
                      f"{f.rejected:,}", *retired, style="yellow" if f.rejected else None)
    console.print(table)
    for f in report.files:
        if f.note:
            console.print(f"[yellow]{f.file}[/yellow]: {escape(f.note)}", highlight=False, soft_wrap=True)
    for r in report.rejections[:show]:
        console.print(f"[yellow]rejected[/yellow] {escape(str(r))}", highlight=False, soft_wrap=True)
    hidden = len(report.rejections) - min(show, len(report.rejections))
    if hidden:
        console.print(f"… and {hidden:,} more rejected row(s); all are in import_rejection "
                      f"(batch_id = {report.batch_id})")
    if report.rejections:
        console.print(f"[yellow]{len(report.rejections):,} row(s) rejected[/yellow]; the other rows were imported")
    else:
        console.print("[green]all rows imported[/green]")
    raise typer.Exit(report.exit_code)


def check_key_file(path: Path) -> tuple[bool, str]:
    """(ok, description) for a private key file: it must hold an unencrypted RSA private key.
    The description never contains key material."""
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        data = path.read_bytes()
    except OSError as e:
        return False, f"cannot read: {e.strerror}"
    try:
        key = load_pem_private_key(data, password=None)
    except TypeError:
        return False, "encrypted key (a password is required); use an unencrypted PEM"
    except (ValueError, Exception):  # noqa: BLE001 - cryptography raises several types; never echo the data
        return False, "not a PEM private key"
    if not isinstance(key, RSAPrivateKey):
        return False, f"not an RSA key ({type(key).__name__.removeprefix('_')}); RS256 needs RSA"
    if key.key_size < 2048:
        return False, f"RSA {key.key_size} bits: too short (2048 or more)"
    return True, f"RSA {key.key_size} bits"


@app.command("platforms")
def platforms_cmd(ctx: typer.Context) -> None:
    """List the platform registrations and check that each private key file loads as an RSA key, that
    each token_url is on allowed_hosts (a configuration error otherwise), and that the imported courses'
    service URLs are on their platform's allowed_hosts.

    Never prints key material. Exit code 1 when a key does not load or a URL is outside allowed_hosts.
    """
    settings = settings_from(ctx, required=True)
    if not settings.platforms:
        console.print(f"no [[platforms]] in {settings.source_path}")
        raise typer.Exit(1)
    console.print(f"platforms in {escape(str(settings.source_path))}", highlight=False, soft_wrap=True)
    failures = 0
    for p in settings.platforms:
        ok, detail = check_key_file(p.private_key_file)
        failures += not ok
        key = f"[green]ok[/green] {detail}" if ok else f"[red]FAIL[/red] {escape(detail)}"
        rows = [
            ("issuer", escape(p.issuer)), ("client_id", escape(p.client_id)), ("token_url", escape(p.token_url)),
            ("audience", escape(p.audience) if p.audience else "(token_url)"),
            ("key", f"{key}: {escape(str(p.private_key_file))} (kid {escape(p.key_id)})"),
            ("allowed_hosts", escape(", ".join(p.allowed_hosts))),
            ("limits", f"max_concurrency {p.max_concurrency or 'default'}, page_size {p.page_size or 'default'}"),
        ]
        console.print(f"\n[bold]{escape(p.name)}[/bold] ({p.vendor.value})", highlight=False)
        for label, value in rows:
            console.print(f"  {label:<14}{value}", highlight=False, soft_wrap=True)
    from gradesync.audit.scope_check import imported_url_problems

    url_problems = imported_url_problems(settings)
    for problem in url_problems[:20]:
        console.print(f"[red]FAIL[/red] {escape(problem)}", highlight=False, soft_wrap=True)
    if len(url_problems) > 20:
        console.print(f"… and {len(url_problems) - 20} more imported course URL(s) outside allowed_hosts")
    if failures or url_problems:
        raise fail("; ".join(x for x in (f"{failures} private key file(s) did not load" if failures else "",
                                         f"{len(url_problems)} imported course URL(s) outside allowed_hosts"
                                         if url_problems else "") if x))


def main() -> None:
    """Console-script entry point (`gradesync`): the CLI inside its one error boundary."""
    from cli.errors import run_guarded

    sys.exit(run_guarded(app))

