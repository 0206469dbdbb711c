"""A tiny progress hook: the CLI installs a sink (Rich progress bar); the pipeline reports into it.

Flow parameters must stay serialisable, so the sink is process-wide state rather than a parameter.
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
