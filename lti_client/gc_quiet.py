"""No full garbage collections while a client is open: young ones only (issue 13).

A full collection walks every object the process holds, and nothing else runs meanwhile: no answer is read,
no request written, so every request in flight waits it out. Reading 300 courses (bench/extraction.py,
75,000 results kept) triggered two, of 44–187 ms; each cost all 12 requests in flight that long, and a
Prefect worker's heap is larger still. What a read keeps (records, pages) is not cyclic garbage, and the
little cyclic garbage it makes is young: the young collections, which stay on and take well under 1 ms,
free it. So while any client is open the older generations are left alone; the thresholds the process
had come back when the last open client closes, and the next full collection then runs as usual.
"""
from __future__ import annotations

import gc
import threading

_NEVER = 1 << 30                    # a generation threshold never reached
_lock = threading.Lock()
_open = 0
_saved: tuple[int, ...] | None = None


def hold() -> None:
    """One more open client: older generations are not collected until every holder has let go."""
    global _open, _saved
    with _lock:
        if _open == 0:
            _saved = gc.get_threshold()
            if _saved[0]:           # threshold 0: the process turned automatic collection off itself
                gc.set_threshold(_saved[0], _NEVER, _NEVER)
        _open += 1


def release() -> None:
    """One client fewer; the last one restores the process's own thresholds."""
    global _open, _saved
    with _lock:
        if _open == 0:
            return
        _open -= 1
        if _open == 0 and _saved is not None:
            gc.set_threshold(*_saved)
            _saved = None
