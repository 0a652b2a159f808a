"""One writer at a time per SQLite file, queued in Python rather than in SQLite.

SQLite admits one writer; a second connection that wants to write waits in
SQLite's busy handler, which sleeps in growing steps (1, 2, 5, 10 ... 100 ms)
and retries.  Inside one process — the API server's threads writing events,
idempotency keys and read models at once — that turns contention into long
sleeps and collapses throughput.  Every write transaction on a file first takes
this process-wide lock for the file, so writers in one process queue and hand
over at once; SQLite's own lock still orders writers of different processes.
"""

from __future__ import annotations

import functools
import os
import threading

_locks: dict[str, threading.RLock] = {}
_guard = threading.Lock()


@functools.lru_cache(maxsize=64)
def _key(db_name: str) -> str | None:
    """The file a database name denotes; None for in-memory databases (no sharing)."""
    name = db_name
    if name.startswith("file:"):
        name, _, query = name[len("file:") :].partition("?")
        if "mode=memory" in query:
            return None
    if not name or name == ":memory:":
        return None
    return os.path.realpath(name)  # cached: resolving it cost more than a commit


def sqlite_writer(db_name: str) -> threading.RLock | None:
    """The lock every write transaction on ``db_name`` takes first (None: in memory).

    Re-entrant: a thread already writing may nest (SQLite then decides)."""
    key = _key(db_name)
    if key is None:
        return None
    with _guard:
        lock = _locks.get(key)
        if lock is None:
            lock = _locks[key] = threading.RLock()
        return lock
