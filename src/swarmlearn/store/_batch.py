"""Batch writes to a SQLite file with the GIL released for the whole transaction.

The recorder writes in a thread of its own while the swarm runs Python code
in the main thread. Python's ``sqlite3`` releases the GIL for each row's
step and takes it back for the next row, so an ``executemany`` of a batch
hands the GIL over once per row, and each hand-back waits for the swarm to
let go of it (up to the 5 ms switch interval): the recorder falls behind, its
queue fills, the swarm blocks, and the two run one after the other.
:class:`BatchWriter` runs the whole transaction (``BEGIN IMMEDIATE``, every
row, ``COMMIT``) in one C call (``_sqlite_batch.c``) that releases the GIL
once, on a connection of its own to the store's file, 64 rows an ``INSERT``. The values bound are
the very ones ``sqlite3`` would bind (int, float, str, bytes, None), so what
is stored does not change (tests/store/test_batch.py compares both paths).

Without the extension (no C compiler or no ``sqlite3.h`` at install), or
where Python's ``sqlite3`` has a SQLite of its own built in, the store writes
through ``sqlite3`` as before; an in-memory or read-only store always does.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from swarmlearn.errors import StoreError

logger = logging.getLogger(__name__)

try:
    from swarmlearn.store import _sqlite_batch
except ImportError:  # pragma: no cover - the extension is optional
    _sqlite_batch = None  # type: ignore[assignment]

__all__ = ["AVAILABLE", "BatchWriter", "Part", "insert_sql"]


def _available() -> bool:
    """Built, and on the very SQLite library Python's sqlite3 uses: two copies of SQLite
    in one process (a Python with SQLite built into _sqlite3) would drop each other's
    file locks, so then the store writes through sqlite3 alone."""
    if _sqlite_batch is None:
        return False
    import _sqlite3

    path = getattr(_sqlite3, "__file__", None)
    if path is None or not _sqlite_batch.same_library(path):
        logger.info("not using the C batch writer: sqlite3 runs another SQLite library")
        return False
    return True


#: whether the store writes SQLite batches with the C writer
AVAILABLE = _available()

Rows = list[tuple[Any, ...]]
#: (sql, rows) or (sql, rows, spec): see _sqlite_batch.c
Part = tuple[str, Rows] | tuple[str, Rows, tuple[tuple[int, int, Callable[[Any], str] | None], ...]]


@functools.lru_cache(maxsize=64)
def insert_sql(table: str, columns: tuple[str, ...]) -> str:
    """``INSERT INTO table (columns) VALUES``: the writer adds a row's placeholders per row."""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES"


class BatchWriter:
    """Writes ``(sql, rows)`` parts to the SQLite file at ``path``, one transaction per call.

    The connection opens at the first write (after the store has created
    and migrated the schema) and again in a forked child, which never uses
    its parent's. Calls from several threads take turns.
    """

    def __init__(self, path: str, url: str, *, busy_timeout_ms: int = 30_000) -> None:
        if _sqlite_batch is None:
            raise StoreError("the C batch writer (store/_sqlite_batch.c) was not built")
        self.path = path
        self.url = url
        self.busy_timeout_ms = busy_timeout_ms
        self._writer: _sqlite_batch.Writer | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def write(self, parts: list[Part], *, what: str) -> None:
        assert _sqlite_batch is not None
        with self._lock:
            try:
                if self._writer is None or self._pid != os.getpid():
                    self._writer = _sqlite_batch.Writer(self.path, self.busy_timeout_ms)
                    self._pid = os.getpid()
                self._writer.write(parts)
            except (_sqlite_batch.Error, TypeError, ValueError, OverflowError,
                    UnicodeError) as exc:
                raise StoreError(f"{what} in {self.url} failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            writer, self._writer = self._writer, None
            if writer is not None and self._pid == os.getpid():
                writer.close()
