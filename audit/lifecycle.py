"""The life of a buffering sink in a process: closed on the way out, told when it forks.

A sink that holds events in memory (the spool, the in-process DuckDB sink) must write them
before its process ends, and a forked child must not write what its parent holds (the
parent will) nor use its parent's files, connections or threads. `register` does both for
any sink with ``close()`` and ``after_fork_in_child()``:

- at exit, every live sink is closed: through ``atexit`` in a process that ends normally,
  and through multiprocessing's finalizers in a multiprocessing child, which leaves through
  ``os._exit`` and skips ``atexit``;
- in a forked child, each live sink's ``after_fork_in_child()`` runs first thing.

Sinks are held weakly: registering does not keep one alive.
"""

from __future__ import annotations

import atexit
import multiprocessing.util
import os
import weakref
from typing import Any, Protocol

from audit import health


class ProcessBound(Protocol):
    """What `register` needs of a sink."""

    def close(self) -> None: ...

    def after_fork_in_child(self) -> None: ...


_live: weakref.WeakSet[Any] = weakref.WeakSet()
_exit_hook_pid = 0  # the process whose multiprocessing finalizer is in place


def register(sink: ProcessBound) -> None:
    """Close ``sink`` when this process exits; call its ``after_fork_in_child()`` in a forked
    child."""
    _live.add(sink)
    on_exit_of_this_process()


def on_exit_of_this_process() -> None:
    """Make sure the live sinks are closed when this process ends, also when it is a
    multiprocessing child. A sink calls this when it starts work in a process: a child's
    finalizers are cleared when it starts, after the fork hooks ran."""
    global _exit_hook_pid
    pid = os.getpid()
    if _exit_hook_pid != pid:
        _exit_hook_pid = pid
        multiprocessing.util.Finalize(None, close_all, exitpriority=100)


def close_all() -> None:
    """Close every live sink (each at most once: closing a closed sink does nothing);
    a failure is counted, never raised into the exit."""
    for sink in list(_live):
        try:
            sink.close()
        except Exception as exc:
            health.dropped(getattr(sink, "name", type(sink).__name__), exc, 0)


def _after_fork_in_child() -> None:
    for sink in list(_live):
        sink.after_fork_in_child()


atexit.register(close_all)  # (multiprocessing runs its finalizers at exit too; closing twice
# does nothing, and this does not depend on that)
os.register_at_fork(after_in_child=_after_fork_in_child)
