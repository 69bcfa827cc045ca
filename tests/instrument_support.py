"""Shared by the instrumentation tests: a clean `audit` configuration per test, a sink that
keeps what it is given, and the worker of the multi-process spool tests.

Test modules wrap these in their own fixtures (``yield from fresh_audit()``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import audit
from audit import health


class ListSink:
    """Keeps each event dict; thread-safe."""

    name = "list"

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(dict(event))

    def fields(self) -> list[str]:
        return [e["field"] for e in self.events]


def fresh_audit() -> Iterator[None]:
    """Default settings and zeroed counters before and after a test."""
    audit.reset()
    health.reset()
    yield
    audit.reset()
    health.reset()


def list_sink() -> ListSink:
    """A `ListSink` configured as the only sink, without OpenTelemetry."""
    s = ListSink()
    audit.configure(sink=s, otel=False)
    return s


def spool_writer(directory: str, writer: str, n: int, configure: bool) -> None:
    """A process's work in the multi-process spool tests: ``n`` tracked writes as ``writer``.

    ``configure=False`` uses the spool sink inherited from a forked parent.
    """
    if configure:
        from collectors.spool import SpoolSink

        audit.configure(sink=SpoolSink(directory), otel=False)

    @audit.tracked(entity_type="block")
    def apply(doc, i):
        doc["content"] = f"{writer}-{i}"
        doc["seq"] = i

    doc = {"id": f"block-{writer}"}
    with audit.writer(writer):
        for i in range(n):
            apply(doc, i)
