"""conflict-audit instrumentation: what services import to record field transitions.

    import audit
    audit.configure(sink=SpoolSink("/var/spool/audit"), redact=("content",))

    @audit.tracked(entity=lambda block: block["id"], entity_type="block")
    def apply_update(block, update): ...

    with audit.writer("workflow", actor="engine-1"):
        apply_update(block, update)

Importing this package is cheap: structlog and OpenTelemetry load with the first event,
DeepDiff only for values that are not JSON-like, and nothing here imports DuckDB, the
collectors or the CLI. Sinks come from ``collectors`` (spool, DuckDB, OpenTelemetry) or are
any callable taking an event dict.
"""

from __future__ import annotations

from audit.diff import MISSING, diff
from audit.emit import JSONLinesSink, OTelLogSink, StructlogSink, flush
from audit.guard import (
    ConflictError,
    compare_and_swap,
    field_writer,
    merge_by_priority,
    priority_allows,
)
from audit.health import stats
from audit.settings import Settings, configure, reset
from audit.track import annotate, record, tracked, tracking
from audit.writer import Writer, current_writer, writer

__all__ = [
    "MISSING",
    "ConflictError",
    "JSONLinesSink",
    "OTelLogSink",
    "Settings",
    "StructlogSink",
    "Writer",
    "annotate",
    "compare_and_swap",
    "configure",
    "current_writer",
    "diff",
    "field_writer",
    "flush",
    "merge_by_priority",
    "priority_allows",
    "record",
    "reset",
    "stats",
    "tracked",
    "tracking",
    "writer",
]
