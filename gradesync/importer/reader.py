"""Reading one CSV file: header check, then (physical line number, row) pairs, with unreadable rows
reported instead of raised."""
from __future__ import annotations

import csv
import io
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

RAW_ROW_LIMIT = 2000        # characters of a rejected row kept in import_rejection


class HeaderError(ValueError):
    """The header makes the whole file unusable (a required column is missing, or no header at all)."""


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str
    raw: str | None


def printable(text: str) -> str:
    """`text` without NUL bytes (shown as \\x00): PostgreSQL text columns cannot hold them."""
    return text.replace("\x00", "\\x00") if "\x00" in text else text


def raw_text(fields: list[str]) -> str:
    """A row as CSV text again (for the rejection log), cut to RAW_ROW_LIMIT characters."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(fields)
    return printable(buf.getvalue()[:RAW_ROW_LIMIT])


def _strict_error(text: str) -> str | None:
    """Why `text` is not well-formed CSV by the strict rules (None when it is). The lenient reader
    accepts `"a"b` or a quote left open at the end of the file; strict parsing tells them apart."""
    try:
        for _ in csv.reader(io.StringIO(text), strict=True):
            pass
    except csv.Error as e:
        return str(e)
    return None


class CsvFile:
    """Iterate `rows()` after construction; the header is checked in __init__ (raises HeaderError)."""

    def __init__(self, path: Path, columns: tuple[str, ...]):
        self._fh = path.open("rb")
        self.undecodable: set[int] = set()        # physical lines that were not valid UTF-8
        self.nul_lines: set[int] = set()          # physical lines holding a NUL byte
        self._number = 0                          # physical lines read from the file so far
        self._eof = False
        self._last = 0                            # number of the last line handed to the parser
        self._record: list[str] = []              # the lines of the record being parsed
        self._pending: deque[tuple[int, str]] = deque()   # lines to parse again (after an unbalanced quote)
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
        self.header = [printable(h.strip()) for h in header]
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
        """Physical lines decoded one by one, so one bad byte costs one row, not the file. Lines handed
        back after an unbalanced quote come first. Each line is also kept in `_record` (the record being
        parsed), and `_last` is its number."""
        record, pending = self._record, self._pending
        while pending:
            self._last, text = pending.popleft()
            record.append(text)
            yield text
        number = self._number
        for raw in self._fh:
            number += 1
            self._number = self._last = number
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]      # spreadsheet exports often start with a BOM that would glue to a column name
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                self.undecodable.add(number)
                text = raw.decode("utf-8", errors="replace")
            if "\x00" in text:
                self.nul_lines.add(number)
            record.append(text)
            yield text
        self._eof = True

    def _record_lines(self) -> list[tuple[int, str]]:
        """(number, text) of the lines of the record just parsed."""
        first = self._last - len(self._record) + 1
        return list(enumerate(self._record, start=first))

    def _runaway_quote(self, lines: list[tuple[int, str]], detail: str) -> None:
        """A quoted field opened on the record's first line swallowed the lines after it: reject that
        first line (where the quote starts) and read the following lines again as rows of their own."""
        start, end = lines[0][0], lines[-1][0]
        fields = next(csv.reader([lines[0][1]], strict=False), [])
        span = f"it runs to line {end}" if end > start else "it runs to the end of the file"
        self.bad.append(BadRow(start, f"unbalanced quote: a quoted field opened on line {start} is never "
                                      f"closed ({span}{detail})", raw_text(fields)))
        self._pending.extendleft(reversed(lines[1:]))
        self._reader = csv.reader(self._lines(), strict=False)     # fresh parser state after the error

    def rows(self) -> Iterator[tuple[int, dict[str, str], list[str]]]:
        """(first physical line of the record, {column: stripped value}, raw fields). Rows with the wrong
        number of fields, undecodable bytes, NUL bytes or broken quoting land in `self.bad` instead."""
        width, columns = len(self.header), self.columns
        pick = itemgetter(*self.index) if len(self.index) > 1 else (lambda r, i=self.index[0]: (r[i],))
        strip = str.strip
        record = self._record
        while True:
            record.clear()
            try:
                fields = next(self._reader)
            except StopIteration:
                break
            except csv.Error as e:
                if not record:
                    break
                lines = self._record_lines()
                if len(lines) > 1:
                    self._runaway_quote(lines, f"; {e}")
                else:
                    self.bad.append(BadRow(lines[0][0], f"unreadable CSV row: {e}", None))
                continue
            if not fields:
                continue                  # blank line
            n_lines = len(record)
            line = self._last - n_lines + 1   # a quoted field may span lines: report where the record starts
            if n_lines > 1 or self._eof:
                # A quoted field spanning lines must be well formed (as any CSV writer makes it): one that
                # is not, or that leaves the wrong number of fields, is a quote opened by mistake that
                # swallowed the lines after it. So is a quote still open at the end of the file.
                error = _strict_error("".join(record))
                if (n_lines > 1 and (error or len(fields) != width)) or (
                        error and "unexpected end of data" in error):
                    self._runaway_quote(self._record_lines(), "")
                    continue
            if self.undecodable and any(n in self.undecodable for n in range(line, line + n_lines)):
                self.bad.append(BadRow(line, "not valid UTF-8", raw_text(fields)))
                continue
            if len(fields) != width:
                self.bad.append(BadRow(line, f"row has {len(fields)} fields, header has {width}", raw_text(fields)))
                continue
            values = dict(zip(columns, map(strip, pick(fields))))
            if self.nul_lines and any(n in self.nul_lines for n in range(line, line + n_lines)):
                column = next((c for c, v in values.items() if "\x00" in v), None)
                if column is not None:
                    self.bad.append(BadRow(line, f"{column}: contains a NUL byte (\\x00), which a text "
                                                 "column cannot hold", raw_text(fields)))
                    continue
            yield line, values, fields

    def close(self) -> None:
        self._fh.close()
