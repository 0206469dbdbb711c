"""Obsolete: a process-wide progress sink, which a batch running in another process cannot reach.

Nothing installs a sink any more: the CLI's progress bar reads the run from the database
(gradesync/audit/progress_view.py, cli/progress.py), so start/advance below do nothing. Delete this module
once flows/audit.py and tasks/extract.py stop calling it.
"""
from __future__ import annotations

from typing import Protocol


class ProgressSink(Protocol):
    def start(self, total: int, description: str) -> None: ...
    def advance(self, label: str) -> None: ...


_sink: ProgressSink | None = None


def install(sink: ProgressSink | None) -> None:
    """Set (or clear with None) the sink that receives progress events of this process."""
    global _sink
    _sink = sink


def start(total: int, description: str) -> None:
    if _sink is not None:
        _sink.start(total, description)


def advance(label: str) -> None:
    if _sink is not None:
        _sink.advance(label)
