"""Counters of what the instrumentation sent and dropped, per sink, and why.

Failing open means a broken sink costs events, never the service's write; these counters
are how anyone finds out. The first failure of each sink is logged as a warning on the
``audit`` logger, and so is its first lost event if that first failure lost none (a
retried request, a failed flush); later ones are only counted.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

log = logging.getLogger("audit")

_lock = threading.Lock()
_counts: dict[str, dict[str, Any]] = {}
_events = 0


def _slot(name: str) -> dict[str, Any]:
    slot = _counts.get(name)
    if slot is None:
        slot = _counts[name] = {
            "sent": 0, "dropped": 0, "errors": 0, "reasons": {}, "last_error": None,
        }
        # told: a first failure, a first lost event (the first failure may have lost none)
        slot["_told_failure"] = slot["_told_loss"] = False
    return slot


def count(
    events: int, sent: dict[str, int], failures: list[tuple[str, str | BaseException, int]]
) -> None:
    """One write's worth of counting under one lock: events produced, sent per sink,
    and the failures ``(name, reason, events lost)``."""
    global _events
    with _lock:
        _events += events
        if sent:
            for name, n in sent.items():
                _slot(name)["sent"] += n
    for name, reason, n in failures:
        dropped(name, reason, n)


def sent(name: str, n: int = 1) -> None:
    with _lock:
        _slot(name)["sent"] += n


def dropped(name: str, reason: str | BaseException, n: int = 1) -> None:
    """Count one failure of ``name`` that lost ``n`` events (0: a failure that lost none,
    such as a document that cannot carry a stamp); warn at the first failure, and at the
    first lost event if the first failure lost none."""
    if isinstance(reason, BaseException):
        kind = type(reason).__name__
        detail = f"{kind}: {str(reason).strip().splitlines()[0] if str(reason).strip() else ''}"
    else:
        kind = detail = reason
    with _lock:
        slot = _slot(name)
        tell = not slot["_told_failure"] or (n > 0 and not slot["_told_loss"])
        slot["_told_failure"] = True
        slot["_told_loss"] = slot["_told_loss"] or n > 0
        slot["dropped"] += n
        slot["errors"] += 1
        slot["reasons"][kind] = slot["reasons"].get(kind, 0) + 1
        slot["last_error"] = detail[:300]
    if tell:
        what = (f"failed and dropped {n} event(s) ({detail[:300]}); the service goes on"
                if n else
                f"failed, no event lost ({detail[:300]}); the service goes on, a first lost "
                "event will be told too")
        # A broken logging setup must not break the write either.
        with contextlib.suppress(Exception):
            log.warning("audit: %s %s; further failures are only counted: see audit.stats()",
                        name, what)


def stats() -> dict[str, Any]:
    """``{"events": n, "sinks": {name: {"sent", "dropped", "errors", "reasons", "last_error"}}}``.

    ``events``: events tracked writes produced; per sink ``sent``/``dropped`` events,
    ``errors`` failures (one can drop a whole batch), ``reasons`` failures by exception type.
    Besides the sinks: ``pipeline`` (a processor failed), ``instrumentation`` (diffing a
    write failed; the write itself went ahead), ``stamp`` (a document that cannot carry the
    stamp).
    """
    with _lock:
        return {
            "events": _events,
            "sinks": {
                name: {
                    "sent": slot["sent"],
                    "dropped": slot["dropped"],
                    "errors": slot["errors"],
                    "reasons": dict(slot["reasons"]),
                    "last_error": slot["last_error"],
                }
                for name, slot in _counts.items()
            },
        }


def reset() -> None:
    global _events
    with _lock:
        _counts.clear()
        _events = 0
