"""The audit's progress bar: a thread polls the database (gradesync.audit.progress_view) while the flow
runs, so the bar also follows batches that run in other processes or on other machines."""
from __future__ import annotations

import threading
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

POLL_SECONDS = 0.5


class RunProgressBar:
    """`with RunProgressBar(url, "course-audit", console):` shows courses done of the newest run of that
    kind started inside the block; it disappears when the block ends."""

    def __init__(self, database_url: str, kind: str, console: Console, poll_seconds: float = POLL_SECONDS):
        self.database_url, self.kind, self.poll_seconds = database_url, kind, poll_seconds
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console, transient=True)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._after = 0
        self._task: TaskID | None = None

    def __enter__(self) -> "RunProgressBar":
        from gradesync.audit.progress_view import newest_run_id

        self._after = newest_run_id(self.database_url)     # runs up to here are someone else's
        self.bar.start()
        self._task = self.bar.add_task("starting the audit", total=None)
        self._thread = threading.Thread(target=self._poll, name="gradesync-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.bar.stop()

    def refresh(self) -> None:
        """Read the run's progress once and show it."""
        from gradesync.audit.progress_view import run_progress

        seen = run_progress(self.database_url, self._after, kind=self.kind)
        if seen is not None and self._task is not None:
            self.bar.update(self._task, description=f"audit run {seen.run_id}: courses",
                            completed=seen.done, total=seen.total or None)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - the bar is only a view: a busy database skips one tick
                continue
