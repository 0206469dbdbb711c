"""Reading one CSV file: header check, then (physical line number, row) pairs, with unreadable rows
reported instead of raised."""
from __future__ import annotations

import csv
import io
from operator import itemgetter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

RAW_ROW_LIMIT = 2000        # characters of a rejected row kept in import_rejection


class HeaderError(ValueError):
    """The header makes the whole file unusable (a required column is missing, or no header at all)."""


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str
    raw: str | None


def raw_text(fields: list[str]) -> str:
    """A row as CSV text again (for the rejection log), cut to RAW_ROW_LIMIT characters."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(fields)
    return buf.getvalue()[:RAW_ROW_LIMIT]


class CsvFile:
    """Iterate `rows()` after construction; the header is checked in __init__ (raises HeaderError)."""

    def __init__(self, path: Path, columns: tuple[str, ...]):
        self._fh = path.open("rb")
        self.undecodable: set[int] = set()        # physical lines that were not valid UTF-8
        self._reader = csv.reader(self._lines(), strict=False)
        try:
            header = next(self._reader, None)
        except csv.Error as e:
            self.close()
            raise HeaderError(f"unreadable header: {e}") from None
        if header is None:
            self.close()
            raise HeaderError("empty file: no header row")
        if 1 in self.undecodable:
            self.close()
            raise HeaderError("header is not valid UTF-8")
        self.header = [h.strip() for h in header]
        dupes = sorted({h for h in self.header if h and self.header.count(h) > 1})
        if dupes:
            self.close()
            raise HeaderError(f"duplicate column {dupes[0]!r} in header")
        missing = [c for c in columns if c not in self.header]
        if missing:
            self.close()
            raise HeaderError(f"missing column {missing[0]!r}" +
                              (f" (and {', '.join(map(repr, missing[1:]))})" if len(missing) > 1 else "") +
                              f"; header has: {', '.join(self.header)}")
        self.index = [self.header.index(c) for c in columns]
        self.columns = columns
        self.bad: list[BadRow] = []

    def _lines(self) -> Iterator[str]:
        """Physical lines decoded one by one, so one bad byte costs one row, not the file."""
        for number, raw in enumerate(self._fh, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]      # spreadsheet exports often start with a BOM that would glue to a column name
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                self.undecodable.add(number)
                yield raw.decode("utf-8", errors="replace")

    def rows(self) -> Iterator[tuple[int, dict[str, str], list[str]]]:
        """(first physical line of the record, {column: stripped value}, raw fields). Rows with the wrong
        number of fields, undecodable bytes or broken quoting land in `self.bad` instead."""
        reader, width, columns = self._reader, len(self.header), self.columns
        pick = itemgetter(*self.index) if len(self.index) > 1 else (lambda r, i=self.index[0]: (r[i],))
        strip = str.strip
        last_line = reader.line_num
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                if reader.line_num == last_line:
                    break
                self.bad.append(BadRow(last_line + 1, f"unreadable CSV row: {e}", None))
                last_line = reader.line_num
                continue
            line = last_line + 1          # a quoted field may span lines: report where the record starts
            last_line = reader.line_num
            if not fields:
                continue                  # blank line
            if self.undecodable and any(n in self.undecodable for n in range(line, last_line + 1)):
                self.bad.append(BadRow(line, "not valid UTF-8", raw_text(fields)))
                continue
            if len(fields) != width:
                self.bad.append(BadRow(line, f"row has {len(fields)} fields, header has {width}", raw_text(fields)))
                continue
            yield line, dict(zip(columns, map(strip, pick(fields)))), fields

    def close(self) -> None:
        self._fh.close()
