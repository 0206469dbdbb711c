"""Text for people on a console: a stable width when not on a terminal, and long lines (course lists,
reasons with URLs) wrapped with a hanging indent instead of being cut wherever the terminal wraps them."""
from __future__ import annotations

import os
import sys
import textwrap
from typing import TextIO

DEFAULT_WIDTH = 120          # pipes, CI logs, tests: $COLUMNS, else this


def stable_width(stream: TextIO | None = None) -> int | None:
    """None on a terminal (Rich measures it); otherwise $COLUMNS or 120, never Rich's guess of 80."""
    stream = stream or sys.stdout
    try:
        if stream.isatty():
            return None
    except (AttributeError, ValueError):
        pass
    try:
        return int(os.environ.get("COLUMNS") or DEFAULT_WIDTH)
    except ValueError:
        return DEFAULT_WIDTH


def wrap_lines(text: str, width: int, hang: str = "    ") -> str:
    """Each line wrapped at `width`; continuation lines keep the line's own indent plus `hang`, so an
    entry of a list stays visibly one entry. Words (URLs, ids) are never split."""
    out = []
    for line in text.splitlines():
        indent = line[: len(line) - len(line.lstrip())]
        out += textwrap.wrap(line, width=max(40, width), subsequent_indent=indent + hang,
                             break_long_words=False, break_on_hyphens=False) or [""]
    return "\n".join(out)
