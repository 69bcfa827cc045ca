"""In-process DuckDB sink: for single-process programs and notebooks.

Events are queued and stored in batches by a background thread through the bulk ingest's
own path (`collectors.ingest.load_lines`), so validation and canonicalisation are exactly
those of ``audit ingest``. A write never waits for DuckDB: if the store fails (locked, disk
full) or the queue overflows, events are dropped and counted in ``audit.stats()``.

DuckDB lets one process hold a database file; services with several processes should write
a spool (`collectors.spool.SpoolSink`) and ingest it instead.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from typing import Any

import duckdb

from audit import health, lifecycle
from audit.emit import render
from collectors.ingest import load_lines
from collectors.store import migrate, open_store


def connect(db: Any, wait_s: float) -> tuple[duckdb.DuckDBPyConnection, bool]:
    """A connection for a sink's own thread: a cursor on a connection handed in (its store
    migrated), or the store at ``db`` opened here; and whether it was opened here."""
    if isinstance(db, duckdb.DuckDBPyConnection):
        migrate(db)
        return db.cursor(), False
    return open_store(db, wait_s=wait_s), True


def store_lines(con: duckdb.DuckDBPyConnection, lines: list[bytes], source: str, name: str) -> bool:
    """Store rendered events through the ingest path, counting what is sent or dropped under
    the sink's ``name``; never raises (the sink fails open)."""
    try:
        summary = load_lines(con, lines, source)
    except Exception as exc:
        health.dropped(name, exc, len(lines))
        return False
    health.sent(name, summary.ingested + summary.duplicates)
    if summary.rejected:
        health.dropped(name, "rejected by validation", summary.rejected)
    return True


class DuckDBSink:
    """``audit.configure(sink=DuckDBSink("audit.duckdb"))``.

    ``db``: a path (opened with `collectors.store.open_store`, waiting up to ``wait_s`` for
    another process's lock) or an open DuckDB connection (the sink uses its own cursor and
    leaves the connection open). ``batch_size``: events per insert; ``flush_interval_s``: how
    long an event may wait for its batch (each insert has a fixed cost of the order of 0.1 s,
    so batches are large); ``max_queue``: events held before dropping.
    """

    reports_health = True

    def __init__(
        self,
        db: Any = None,
        *,
        batch_size: int = 50_000,
        flush_interval_s: float = 1.0,
        max_queue: int = 500_000,
        wait_s: float = 10.0,
        name: str = "duckdb",
    ):
        self._con, _ = connect(db, wait_s)
        self.name = name
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_queue = max_queue
        self.source = f"sink:{socket.gethostname()}:{os.getpid()}"
        self._cond = threading.Condition()
        self._queue: list[bytes] = []
        self._queued = 0  # lines ever queued
        self._done = 0  # lines ever taken care of (stored or dropped)
        self._flush_target = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="audit-duckdb", daemon=True)
        self._thread.start()
        lifecycle.register(self)  # stored at exit; a forked child drops its events

    def write_line(self, line: bytes) -> None:
        with self._cond:
            if self._closed:
                health.dropped(self.name, "closed", 1)
                return
            if len(self._queue) >= self.max_queue:
                health.dropped(self.name, "queue full", 1)
                return
            self._queue.append(line)
            self._queued += 1
            if len(self._queue) >= self.batch_size:
                self._cond.notify_all()

    def __call__(self, event: dict[str, Any]) -> None:
        self.write_line(render(event))

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every event queued so far is stored (or dropped); False on timeout."""
        with self._cond:
            target = self._flush_target = self._queued
            self._cond.notify_all()
            return self._cond.wait_for(
                lambda: self._done >= target or not self._thread.is_alive(), timeout
            ) and self._done >= target

    def close(self) -> None:
        """Store what is queued, stop the thread, close the connection."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        with contextlib.suppress(duckdb.Error):
            self._con.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                # A full batch, a flush() waiting, closing, or the interval: store now.
                self._cond.wait_for(
                    lambda: self._closed or len(self._queue) >= self.batch_size
                    or self._flush_target > self._done,
                    self.flush_interval_s,
                )
                batch, self._queue = self._queue[: self.batch_size], self._queue[self.batch_size :]
                closing = self._closed and not self._queue
            if batch:
                self._store(batch)
            if closing and not batch:
                return

    def _store(self, batch: list[bytes]) -> None:
        store_lines(self._con, batch, self.source, self.name)
        with self._cond:
            self._done += len(batch)
            self._cond.notify_all()

    def after_fork_in_child(self) -> None:
        """(`audit.lifecycle`) A DuckDB connection must not be used from a forked child;
        neither may the thread (it does not exist there). The child's events are dropped,
        visibly."""
        self._cond = threading.Condition()
        self._queue = []
        self._closed = True

    def __repr__(self) -> str:
        return f"DuckDBSink(source={self.source!r})"
