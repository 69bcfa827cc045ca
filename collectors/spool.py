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
could not write (disk full), which are counted in ``audit.stats()``.

A writer holds an exclusive lock (``flock``) on its open ``.part`` file for as long as it
lives; the kernel lets go of it when the process dies, however it dies. A ``.part`` file
nobody holds was left by a dead writer: `seal_abandoned` cuts it to its last complete line
and seals it. Every spool that starts in the directory does so, and so do ``audit ingest
DIR``, ``audit alert --watch DIR`` and ``audit spool seal DIR``; whatever host or PID the
dead writer had. (The lock needs a file system whose locks work across the processes that
share the spool: a local disk, or NFS with working locks.)

`SpoolSink.write_durably` is the collector's way in (``audit serve``): lines written and
fsynced before it returns, fsyncs shared between concurrent callers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from audit import health, lifecycle
from audit.emit import render

PART = ".part"
_NAME = re.compile(r"^(?P<host>.+)\.(?P<pid>\d+)\.(?P<token>[0-9a-f]+)\.(?P<seq>\d+)\.jsonl\.part$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"


def _same_file(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not renamed or removed)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _end_of_last_line(fd: int, size: int) -> int:
    """Offset just past the last newline of the file (0: none), reading from the end."""
    end = size
    while end > 0:
        start = max(0, end - 64 * 1024)
        block = os.pread(fd, end - start, start)
        cut = block.rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        end = start
    return 0


def _seal_if_abandoned(part: Path) -> Path | None:
    try:
        fd = os.open(part, os.O_RDWR)
    except OSError:  # sealed meanwhile, or a spool we may only read: leave it
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # its writer is alive
        if not _same_file(part, fd):
            return None  # its writer sealed it between our open and our lock
        keep = _end_of_last_line(fd, os.fstat(fd).st_size)
        os.ftruncate(fd, keep)  # the line the writer was in the middle of, if any
        if keep == 0:
            os.unlink(part)
            return None
        final = part.with_name(part.name[: -len(PART)])
        os.replace(part, final)  # still holding the lock: no other sealer in between
        return final
    except OSError:
        return None
    finally:
        os.close(fd)


def seal_abandoned(directory: str | os.PathLike) -> list[Path]:
    """Seal the spool files under ``directory`` (recursively) whose writer is gone: no
    process holds their lock. Each is cut to its last complete line and renamed to
    ``.jsonl``. Returns the files sealed; a file it cannot change is left as it is."""
    return [
        final for part in held_parts(directory) if (final := _seal_if_abandoned(part)) is not None
    ]


def held_parts(directory: str | os.PathLike) -> list[Path]:
    """The spool files under ``directory`` that are still ``.part``, in order (once
    `seal_abandoned` has run, those of live writers)."""
    return sorted(p for p in Path(directory).rglob(f"*.jsonl{PART}") if _NAME.match(p.name))


class SpoolSink:
    """``audit.configure(sink=SpoolSink("/var/spool/myservice"))``.

    ``max_bytes``: a file is sealed once it reaches this size; ``max_age_s``: or once it is
    this old (so a quiet service's events become visible); ``buffer_bytes``: events are
    written once this much is buffered, or every ``flush_interval_s``; ``fsync``: make each
    sealed file durable before renaming it, and each new file's name (slower; protects
    against power loss).
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
        seal_abandoned(self.directory)
        lifecycle.register(self)  # sealed at exit; a forked child starts afresh

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
        self._written = 0  # bytes written by this process, all files together
        self._synced = 0  # of those, how many are known to be on disk
        self._durable = 0  # ... and how many `write_durably` promised to be
        self._sync_failed_through = 0  # bytes written when a seal's fsync last failed
        self._sync_lock = threading.Lock()  # one fsync at a time; taken before _lock
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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

    def write_durably(self, data: bytes, events: int) -> None:
        """Append ``data`` (``events`` complete lines, each ending in a newline) and return
        once it is on disk. Raises OSError when it could not be written or synced, so that
        the caller can refuse what it was given; nothing is counted as dropped then.

        Concurrent callers share fsyncs: each waits for one that began after its write
        (group commit), so the disk sees about one fsync per batch of callers.
        """
        with self._lock:
            if self._closed:
                raise OSError(f"spool {self.directory} is closed")
            if self._thread is None:
                self._start_thread()
            self._write_buffer()  # events given to write_line earlier go first
            self._append(data, events)
            mark = self._durable = self._written
            if self._size >= self.max_bytes:
                self._seal()
        self._sync_through(mark)
        if mark <= self._sync_failed_through:  # a seal after our write could not sync it
            raise OSError(f"spool {self.directory}: could not sync a sealed file")

    def _sync_through(self, mark: int) -> None:
        with self._sync_lock:
            if self._synced >= mark:
                return  # an fsync that began after our write covered it
            with self._lock:
                target = self._written
                # A duplicate, so that a seal closing the file meanwhile cannot pull it away.
                fd = os.dup(self._fd) if self._fd is not None else None
            if fd is not None:  # (None: sealed meanwhile; `_seal` synced it)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            with self._lock:
                self._synced = max(self._synced, target)

    def writable(self) -> bool:
        """Whether events can still be written: not closed, and the folder writable."""
        return not self._closed and os.access(self.directory, os.W_OK)

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
        lifecycle.on_exit_of_this_process()  # (a forked child too)

    def _open(self) -> None:
        while True:
            self._seq += 1
            name = f"{_host()}.{self._pid}.{self._token}.{self._seq:06d}.jsonl{PART}"
            path = self.directory / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            # Held while this process lives: `seal_abandoned` leaves the file alone. A sealer
            # may have taken the new, empty file between the open and the lock, and removed
            # it: then start another.
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(path, fd):
                break
            os.close(fd)
        if self.fsync:
            _fsync_directory(self.directory)
        self._fd, self._path = fd, path
        self._size = 0
        self._file_events = 0
        self._opened_at = time.monotonic()

    def _write_buffer(self) -> None:
        """Write what is buffered; a failure drops it, counted (the instrumentation fails
        open)."""
        if not self._buffer:
            return
        data, n = bytes(self._buffer), self._buffered
        self._buffer.clear()
        self._buffered = 0
        try:
            self._append(data, n)
        except OSError as exc:
            health.dropped(self.name, exc, n)

    def _append(self, data: bytes, n: int) -> None:
        """Write complete lines to the current file, all or none of them; raises OSError."""
        try:
            if self._fd is None:
                self._open()
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError:
            self._recover_from_failed_write()
            raise
        self._size += len(data)
        self._written += len(data)
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
        final = None
        try:
            if self.fsync or self._synced < self._durable:
                os.fsync(fd)
                self._synced = self._written
            # Renamed (or removed) before it is closed, which lets go of the lock: a sealer
            # never finds it unheld under its .part name.
            if events == 0:
                os.unlink(path)
            else:
                final = path.with_name(path.name[: -len(PART)])
                os.replace(path, final)
        except OSError as exc:
            health.dropped(self.name, exc, 0)
            self._sync_failed_through = self._written
            final = None
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)
        if final is not None:
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

    def after_fork_in_child(self) -> None:
        """(`audit.lifecycle`) The child inherited the parent's buffer (the parent will write
        it) and its file descriptor (the parent's file): let go of both without writing."""
        fd = self._fd
        self._reset_process_state()
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __repr__(self) -> str:
        return f"SpoolSink({str(self.directory)!r})"


def _fsync_directory(directory: Path) -> None:
    """Make a new file's name in ``directory`` durable, not only its content."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
