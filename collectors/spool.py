"""The spool: each process appends its events to its own JSONL file in a shared directory.

The default sink for services that run as several processes (DuckDB lets one process hold a
database, so processes cannot all write the store): each process writes
``<host>.<pid>.<token>.<n>.jsonl.part`` and renames it to ``….jsonl`` once complete, on
rotation (size or age), at exit and on ``close()``. ``audit ingest DIR`` reads ``*.jsonl``
only, so it never sees half a file, and a sealed file never changes, so ingesting the
directory again loads only new files.

Events are buffered in memory and written by size or every ``flush_interval_s`` from a
background thread, so a write costs an append. The spool is the record of truth (unlike
OpenTelemetry's batch processors, which drop under load); what it can lose: events still in
the buffer if the process is killed (at most ``flush_interval_s`` worth), and events it
could not write (disk full), which are counted in ``audit.stats()``. Files left ``.part`` by
a killed process are sealed by the next spool that starts in the directory on the same
host, up to their last complete line.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing.util
import os
import re
import socket
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from audit import health
from audit.emit import render

PART = ".part"
_NAME = re.compile(r"^(?P<host>.+)\.(?P<pid>\d+)\.(?P<token>[0-9a-f]+)\.(?P<seq>\d+)\.jsonl\.part$")

_live: weakref.WeakSet[SpoolSink] = weakref.WeakSet()


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def seal_orphans(directory: str | os.PathLike) -> list[Path]:
    """Seal ``.part`` files of this host whose process is gone: cut to the last complete
    line and rename to ``.jsonl``. Returns the files sealed."""
    sealed = []
    host = _host()
    for part in Path(directory).glob(f"*.jsonl{PART}"):
        m = _NAME.match(part.name)
        if not m or m["host"] != host or _pid_alive(int(m["pid"])):
            continue
        try:
            with open(part, "r+b") as f:
                data = f.read()
                keep = data.rfind(b"\n") + 1
                if keep < len(data):
                    f.truncate(keep)
            final = part.with_name(part.name[: -len(PART)])
            if keep:
                os.replace(part, final)
                sealed.append(final)
            else:
                part.unlink()
        except FileNotFoundError:  # another process sealed it first
            continue
    return sealed


class SpoolSink:
    """``audit.configure(sink=SpoolSink("/var/spool/myservice"))``.

    ``max_bytes``: a file is sealed once it reaches this size; ``max_age_s``: or once it is
    this old (so a quiet service's events become visible); ``buffer_bytes``: events are
    written once this much is buffered, or every ``flush_interval_s``; ``fsync``: make each
    sealed file durable before renaming it (slower; protects against power loss).
    """

    reports_health = True  # counts `sent` when events reach the file, not when buffered

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        max_bytes: int = 16 * 1024 * 1024,
        max_age_s: float = 60.0,
        buffer_bytes: int = 64 * 1024,
        flush_interval_s: float = 1.0,
        fsync: bool = False,
        name: str = "spool",
    ):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.buffer_bytes = buffer_bytes
        self.flush_interval_s = flush_interval_s
        self.fsync = fsync
        self.name = name
        self.sealed: list[Path] = []  # files this process sealed, oldest first
        self._reset_process_state()
        seal_orphans(self.directory)
        _live.add(self)
        atexit.register(_close_ref(self))

    def _reset_process_state(self) -> None:
        """State that belongs to one process; a forked child starts it afresh."""
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._token = os.urandom(4).hex()
        self._seq = 0
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0  # bytes in the current file
        self._opened_at = 0.0
        self._buffer = bytearray()
        self._buffered = 0  # events in the buffer
        self._file_events = 0
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._finalizer_pid = 0

    # --- the sink protocol ----------------------------------------------------------------

    def write_line(self, line: bytes) -> None:
        with self._lock:
            if self._closed:
                health.dropped(self.name, "closed", 1)
                return
            if self._thread is None:
                self._start_thread()
            self._buffer += line
            self._buffer += b"\n"
            self._buffered += 1
            pending = len(self._buffer)
            if pending >= self.buffer_bytes or self._size + pending >= self.max_bytes:
                self._write_buffer()
                if self._size >= self.max_bytes:
                    self._seal()

    def __call__(self, event: dict[str, Any]) -> None:
        self.write_line(render(event))

    def flush(self) -> None:
        """Write buffered events to the current file (still ``.part``: use `rotate` to make
        them visible to ingest)."""
        with self._lock:
            self._write_buffer()

    def rotate(self) -> Path | None:
        """Write what is buffered and seal the current file; returns it (None: no file)."""
        with self._lock:
            self._write_buffer()
            return self._seal()

    def close(self) -> None:
        """Seal the current file and stop; later events are dropped (counted)."""
        with self._lock:
            if self._closed:
                return
            self._write_buffer()
            self._seal()
            self._closed = True
        self._stop.set()

    # --- internals (called with the lock held) -------------------------------------------------

    def _start_thread(self) -> None:
        ref = weakref.ref(self)
        self._thread = threading.Thread(
            target=_tick_loop, args=(ref, self._stop, self.flush_interval_s),
            name="audit-spool", daemon=True,
        )
        self._thread.start()
        if self._finalizer_pid != self._pid:
            # A multiprocessing child leaves through os._exit, which skips atexit but runs
            # multiprocessing's finalizers: seal there too.
            multiprocessing.util.Finalize(self, _close_ref(self), exitpriority=100)
            self._finalizer_pid = self._pid

    def _open(self) -> None:
        self._seq += 1
        name = f"{_host()}.{self._pid}.{self._token}.{self._seq:06d}.jsonl{PART}"
        self._path = self.directory / name
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = 0
        self._file_events = 0
        self._opened_at = time.monotonic()

    def _write_buffer(self) -> None:
        if not self._buffer:
            return
        data, n = bytes(self._buffer), self._buffered
        self._buffer.clear()
        self._buffered = 0
        try:
            if self._fd is None:
                self._open()
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            self._recover_from_failed_write()
            health.dropped(self.name, exc, n)
            return
        self._size += len(data)
        self._file_events += n
        health.sent(self.name, n)

    def _recover_from_failed_write(self) -> None:
        """Cut a half-written batch off the file, so no line is ever cut in two; if even
        that fails, seal what was complete and start a new file next time."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            self._seal()

    def _seal(self) -> Path | None:
        if self._fd is None:
            return None
        fd, path, events = self._fd, self._path, self._file_events
        self._fd = None
        self._path = None
        try:
            if self.fsync:
                os.fsync(fd)
            os.close(fd)
            if events == 0:
                os.unlink(path)
                return None
            final = path.with_name(path.name[: -len(PART)])
            os.replace(path, final)
        except OSError as exc:
            health.dropped(self.name, exc, 0)
            return None
        self.sealed.append(final)
        return final

    def tick(self) -> None:
        """What the background thread does every ``flush_interval_s``: write the buffer, and
        seal the file if it is due (size or age)."""
        with self._lock:
            if self._closed or os.getpid() != self._pid:
                return
            self._write_buffer()
            if self._fd is not None and (
                self._size >= self.max_bytes or time.monotonic() - self._opened_at >= self.max_age_s
            ):
                self._seal()

    def _after_fork_in_child(self) -> None:
        # The child inherited the parent's buffer (the parent will write it) and its file
        # descriptor (the parent's file): let go of both without writing.
        fd = self._fd
        self._reset_process_state()
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __repr__(self) -> str:
        return f"SpoolSink({str(self.directory)!r})"


def _close_ref(sink: SpoolSink):
    ref = weakref.ref(sink)

    def close() -> None:
        s = ref()
        if s is not None and s._pid == os.getpid():
            s.close()

    return close


def _tick_loop(ref: weakref.ref, stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        sink = ref()
        if sink is None:
            return
        try:
            sink.tick()
        except Exception as exc:  # keep ticking; the failure is counted
            health.dropped(sink.name, exc, 0)
        del sink


def _after_fork() -> None:
    for sink in list(_live):
        sink._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork)
