"""import_folder: load the tool's CSV export into the database, file by file in dependency order.

Fast path for large files: csv module → plain dicts → executemany upserts in chunks (no ORM objects per
row). Idempotent: an unchanged row is not written (the upsert's WHERE skips it) and counts as unchanged.
Rows absent from a later export are kept — the import adds and updates, it never deletes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert, select
from sqlmodel import Session

from gradesync.importer.fields import RowError
from gradesync.importer.reader import CsvFile, HeaderError, raw_text
from gradesync.importer.specs import SPECS, FileSpec, ImportContext
from gradesync.settings import Settings
from models import Account, Course, ImportBatch, ImportRejection, Platform, bulk_upsert, utcnow

CHUNK_ROWS = 50_000


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
    skipped: str | None = None         # why the whole file was not imported (header problem, absent)


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
                         "unchanged": r.unchanged, "rejected": r.rejected, "skipped": r.skipped}
                for r in self.files}


def check_folder(folder: Path) -> None:
    """Raise ImportFatal unless `folder` is a readable directory holding every required file."""
    if not folder.is_dir():
        raise ImportFatal(f"not a folder: {folder}")
    try:
        present = {p.name for p in folder.iterdir()}
    except OSError as e:
        raise ImportFatal(f"cannot read folder {folder}: {e.strerror}") from None
    missing = [s.file for s in SPECS if s.required_file and s.file not in present]
    if missing:
        raise ImportFatal(f"{folder}: missing required file {', '.join(missing)}")


def sync_platforms(session: Session, settings: Settings) -> None:
    """Mirror gradesync.toml's registrations into `platform` (rows are never deleted: others reference them)."""
    rows = [{"name": p.name, "vendor": p.vendor.value, "issuer": p.issuer, "client_id": p.client_id,
             "updated_at": utcnow()} for p in settings.platforms]
    bulk_upsert(session, Platform, rows, ("name",), ("vendor", "issuer", "client_id"))


def import_folder(session: Session, folder: Path, settings: Settings) -> ImportReport:
    """Import the CSV export in `folder`; commits per file. Raises ImportFatal before writing anything
    when the folder or a required file is missing."""
    folder = Path(folder)
    check_folder(folder)
    report = ImportReport(folder=folder)
    batch = ImportBatch(folder=str(folder.resolve()))
    session.add(batch)
    sync_platforms(session, settings)
    session.commit()
    report.batch_id = batch.id
    ctx = ImportContext(platforms={p.name: p for p in settings.platforms})

    for spec in SPECS:
        path = folder / spec.file
        if spec.file == "identities.csv" or spec.file == "completions.csv":
            ctx.account_ids = set(session.exec(select(Account.account_id)).scalars())
        if spec.file == "links.csv":
            ctx.courses = {tuple(r) for r in session.exec(select(Course.platform, Course.context_id))}
        if not path.exists():
            report.files.append(FileReport(spec.file, skipped="absent (optional)"))
            continue
        file_report, rejections = _import_file(session, path, spec, ctx)
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
                 ) -> tuple[FileReport, list[Rejection]]:
    rep = FileReport(spec.file)
    rejections: list[Rejection] = []
    try:
        csv_file = CsvFile(path, spec.columns)
    except HeaderError as e:
        rep.skipped = str(e)
        return rep, [Rejection(spec.file, 1, str(e))]
    except OSError as e:
        rep.skipped = f"cannot read: {e.strerror}"
        return rep, [Rejection(spec.file, 1, rep.skipped)]

    first_line: dict[tuple, int] = {}
    key, convert, name = spec.key, spec.convert, spec.file
    chunk: list[dict] = []
    try:
        for line, row, fields in csv_file.rows():
            rep.rows += 1
            try:
                values = convert(row, ctx)
            except RowError as e:
                rejections.append(Rejection(name, line, str(e), raw_text(fields)))
                continue
            k = tuple(values[c] for c in key)
            seen = first_line.get(k)
            if seen is not None:
                shown = ", ".join(f"{c}={row[c]!r}" for c in key)
                rejections.append(Rejection(name, line, f"duplicate key ({shown}); first on line {seen}",
                                            raw_text(fields)))
                continue
            first_line[k] = line
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
    return rep, rejections


def _flush(session: Session, spec: FileSpec, chunk: list[dict], rep: FileReport) -> None:
    if not chunk:
        return
    counts = bulk_upsert(session, spec.model, chunk, spec.key, spec.update_columns)
    rep.inserted += counts.inserted
    rep.updated += counts.updated
    rep.unchanged += counts.unchanged


def _store_rejections(session: Session, batch_id: int, rejections: list[Rejection]) -> None:
    if not rejections:
        return
    now = utcnow()
    rows = [{"batch_id": batch_id, "file": r.file, "line": r.line, "reason": r.reason, "raw_row": r.raw,
             "created_at": now} for r in rejections]
    for i in range(0, len(rows), CHUNK_ROWS):
        session.connection().execute(insert(ImportRejection.__table__), rows[i:i + CHUNK_ROWS])
