"""import_folder: load the tool's CSV export into the database, file by file in dependency order.

Fast path for large files: csv module → plain dicts → executemany upserts in chunks (no ORM objects per
row). Idempotent: an unchanged row is not written (the upsert's WHERE skips it) and counts as unchanged.
A delta import (the default) adds and updates, it never deletes. A full import (`full=True`) also
retires what the export no longer holds (see `_retire`); nothing is ever deleted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert, or_, select, update
from sqlmodel import Session

from gradesync.importer.fields import RowError, check_lengths, column_limits
from gradesync.importer.reader import CsvFile, HeaderError, printable, raw_text
from gradesync.importer.specs import SPECS, FileSpec, ImportContext
from gradesync.settings import Settings
from models import (Account, Completion, Course, ImportBatch, ImportRejection, Platform, bulk_upsert,
                    utcnow)
from models.tool_records import passback_digest

CHUNK_ROWS = 50_000
_IDS_PER_STATEMENT = 10_000     # below SQLite's 32,766 bound parameters per statement


class ImportFatal(Exception):
    """The import cannot run at all (unreadable folder, missing required file)."""


@dataclass(frozen=True)
class Rejection:
    file: str
    line: int
    reason: str
    raw: str | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class FileReport:
    file: str
    rows: int = 0                      # data rows read (rejected ones included)
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    retired: int | None = None         # --full: rows the export no longer holds, now retired
    skipped: str | None = None         # why the whole file was not imported (header problem, absent)
    note: str | None = None            # --full: why nothing was retired from this file


@dataclass
class ImportReport:
    folder: Path
    batch_id: int | None = None
    files: list[FileReport] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0: every row imported; 2: some rows (or a whole file) rejected."""
        return 2 if self.rejections else 0

    def counts(self) -> dict[str, dict[str, int | str | None]]:
        return {r.file: {"rows": r.rows, "inserted": r.inserted, "updated": r.updated,
                         "unchanged": r.unchanged, "rejected": r.rejected, "retired": r.retired,
                         "skipped": r.skipped, "note": r.note}
                for r in self.files}


def check_folder(folder: Path) -> None:
    """Raise ImportFatal unless `folder` is a readable directory holding every required file, each with
    a usable header. A header problem is fatal (one message per file, nothing imported): importing the
    other files would only bury it under every dependent row rejected as unknown."""
    if not folder.is_dir():
        raise ImportFatal(f"not a folder: {folder}")
    try:
        present = {p.name for p in folder.iterdir()}
    except OSError as e:
        raise ImportFatal(f"cannot read folder {folder}: {e.strerror}") from None
    missing = [s.file for s in SPECS if s.required_file and s.file not in present]
    if missing:
        raise ImportFatal(f"{folder}: missing required file {', '.join(missing)}")
    problems = []
    for spec in SPECS:
        if spec.file not in present:
            continue
        try:
            CsvFile(folder / spec.file, spec.columns).close()
        except HeaderError as e:
            problems.append(f"{folder / spec.file}:1: {e}")
        except OSError as e:
            problems.append(f"{folder / spec.file}: cannot read: {e.strerror}")
    if problems:
        raise ImportFatal("\n".join(problems))


def sync_platforms(session: Session, settings: Settings) -> None:
    """Mirror gradesync.toml's registrations into `platform` (rows are never deleted: others reference them)."""
    rows = [{"name": p.name, "vendor": p.vendor.value, "issuer": p.issuer, "client_id": p.client_id,
             "updated_at": utcnow()} for p in settings.platforms]
    bulk_upsert(session, Platform, rows, ("name",), ("vendor", "issuer", "client_id"))


def import_folder(session: Session, folder: Path, settings: Settings, *, full: bool = False) -> ImportReport:
    """Import the CSV export in `folder`; commits per file. Raises ImportFatal before writing anything
    when the folder or a required file is missing or a header is unusable. `full`: the export is full
    for the platforms its courses.csv names, and rows of those platforms it no longer holds are retired."""
    folder = Path(folder)
    check_folder(folder)
    report = ImportReport(folder=folder)
    batch = ImportBatch(folder=str(folder.resolve()))
    session.add(batch)
    sync_platforms(session, settings)
    session.commit()
    report.batch_id = batch.id
    ctx = ImportContext(platforms={p.name: p for p in settings.platforms})

    scope: set[str] = set()                    # --full: the platforms the export is full for
    configured = {p.name for p in settings.platforms}
    for spec in SPECS:
        path = folder / spec.file
        if spec.file == "identities.csv" or spec.file == "completions.csv":
            ctx.account_ids = set(session.exec(select(Account.account_id)).scalars())
        if spec.file == "links.csv":
            # A retired course is gone: a link to it is rejected, like a link to an unknown course.
            ctx.courses, ctx.retired_courses = set(), set()
            for platform, context_id, retired_at in session.exec(
                    select(Course.platform, Course.context_id, Course.retired_at)):
                (ctx.courses if retired_at is None else ctx.retired_courses).add((platform, context_id))
        if not path.exists():
            report.files.append(FileReport(spec.file, skipped="absent (optional)"))
            continue
        file_report, rejections, held = _import_file(session, path, spec, ctx)
        if full and spec.file == "courses.csv":
            scope = {platform for platform, _context in held}
        if full and spec.retirable:
            if rejections:
                file_report.note = (f"nothing retired: {len(rejections):,} row(s) rejected, and a rejected "
                                    "row may be one the export still holds")
            else:
                file_report.retired = _retire(session, spec, held, scope, include_platformless=scope >= configured)
        report.files.append(file_report)
        report.rejections.extend(rejections)
        _store_rejections(session, batch.id, rejections)
        session.commit()

    batch.finished_at = utcnow()
    batch.counts = report.counts()
    session.add(batch)
    session.commit()
    return report


def _import_file(session: Session, path: Path, spec: FileSpec, ctx: ImportContext
                 ) -> tuple[FileReport, list[Rejection], dict[tuple, int]]:
    """Import one file; returns its report, its rejections and the keys it holds (key → first line)."""
    rep = FileReport(spec.file)
    rejections: list[Rejection] = []
    first_line: dict[tuple, int] = {}
    try:
        csv_file = CsvFile(path, spec.columns)
    except HeaderError as e:           # check_folder saw a good header: the file changed since
        rep.skipped = str(e)
        return rep, [Rejection(spec.file, 1, str(e))], first_line
    except OSError as e:
        rep.skipped = f"cannot read: {e.strerror}"
        return rep, [Rejection(spec.file, 1, rep.skipped)], first_line

    key, convert, name = spec.key, spec.convert, spec.file
    shown_key = spec.shown_key or key
    limits = column_limits(spec.model, spec.columns)
    retirable, append_only = spec.retirable, spec.append_only
    occurrences: dict[str, int] = {}
    touched_at = utcnow()
    chunk: list[dict] = []
    try:
        for line, row, fields in csv_file.rows():
            rep.rows += 1
            try:
                values = convert(row, ctx)
                check_lengths(values, limits)
            except RowError as e:
                rejections.append(Rejection(name, line, str(e), raw_text(fields)))
                continue
            if append_only:
                # The Nth identical row of the file is the Nth stored copy: a retried POST logged twice
                # is two rows; the same file (or a delta repeating old rows) again adds nothing. Distinct
                # by construction, so no duplicate check (and no key held in memory per row).
                digest = passback_digest(values)
                values["row_digest"] = digest
                values["occurrence"] = occurrences[digest] = occurrences.get(digest, 0) + 1
            else:
                if retirable:
                    values["retired_at"] = None       # a row the export holds is current again
                k = tuple(values[c] for c in key)
                seen = first_line.get(k)
                if seen is not None:
                    shown = ", ".join(f"{c}={row[c]!r}" for c in shown_key)
                    rejections.append(Rejection(name, line, f"duplicate key ({shown}); first on line {seen}",
                                                raw_text(fields)))
                    continue
                first_line[k] = line
            if spec.touch_column:
                values[spec.touch_column] = touched_at
            chunk.append(values)
            if len(chunk) >= CHUNK_ROWS:
                _flush(session, spec, chunk, rep)
                chunk = []
        _flush(session, spec, chunk, rep)
    finally:
        csv_file.close()
    bad = [Rejection(name, b.line, b.reason, b.raw) for b in csv_file.bad]
    rep.rows += len(bad)
    rejections.extend(bad)
    rejections.sort(key=lambda r: r.line)
    rep.rejected = len(rejections)
    return rep, rejections, first_line


def _retire(session: Session, spec: FileSpec, held: dict[tuple, int], platforms: set[str], *,
            include_platformless: bool) -> int:
    """Set retired_at on the rows of `platforms` that the full export no longer holds (keys not in
    `held`); returns how many. Completions after a manual login belong to no platform: they are in
    scope only when the export is full for every configured platform (`include_platformless`)."""
    if not platforms:
        return 0
    table = spec.model.__table__
    in_scope = table.c.platform.in_(sorted(platforms))
    if spec.model is Completion and include_platformless:
        in_scope = or_(in_scope, table.c.platform.is_(None))
    connection = session.connection()
    rows = connection.execute(select(table.c.id, *[table.c[c] for c in spec.key])
                              .where(in_scope, table.c.retired_at.is_(None)))
    gone = [r[0] for r in rows if tuple(r[1:]) not in held]
    now = utcnow()
    for i in range(0, len(gone), _IDS_PER_STATEMENT):
        batch = gone[i:i + _IDS_PER_STATEMENT]
        connection.execute(update(table).where(table.c.id.in_(batch)).values(retired_at=now))
    return len(gone)


def _flush(session: Session, spec: FileSpec, chunk: list[dict], rep: FileReport) -> None:
    if not chunk:
        return
    counts = bulk_upsert(session, spec.model, chunk, spec.key, spec.update_columns,
                         (spec.touch_column,) if spec.touch_column else ())
    rep.inserted += counts.inserted
    rep.updated += counts.updated
    rep.unchanged += counts.unchanged


def _store_rejections(session: Session, batch_id: int, rejections: list[Rejection]) -> None:
    if not rejections:
        return
    now = utcnow()
    rows = [{"batch_id": batch_id, "file": r.file, "line": r.line, "reason": printable(r.reason),
             "raw_row": None if r.raw is None else printable(r.raw), "created_at": now} for r in rejections]
    for i in range(0, len(rows), CHUNK_ROWS):
        session.connection().execute(insert(ImportRejection.__table__), rows[i:i + CHUNK_ROWS])
