"""OpenTelemetry exporters that store ``field.transition`` span events and log records.

For services already shipping traces or logs through OpenTelemetry: add
``DuckDBLogExporter`` to the LoggerProvider, with `audit.OTelLogSink` as a sink (events as
logs, which is where OpenTelemetry is taking events), or ``DuckDBSpanExporter`` to the
TracerProvider with ``audit.configure(span_events=True)``, and the transitions arrive in the
store through the bulk ingest's path (`collectors.ingest.load_lines`). Everything else in
the batch is ignored. Events are rebuilt by `collectors.otlp_mapping`, the mapping
``audit serve`` uses too.

Not a record of truth: OpenTelemetry's batch processors drop spans and logs when their queue
is full (about a fifth of them in a tight loop), and a span keeps at most 128 events by
default. Use the spool (`collectors.spool.SpoolSink`) where every transition must be kept.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from audit import health
from audit.emit import render
from audit.event import TRANSITION
from collectors.duckdb_sink import connect, store_lines
from collectors.otlp_mapping import event_from_attributes, hex_id


def span_transitions(spans: Sequence[ReadableSpan]) -> Iterator[dict[str, Any]]:
    for span in spans:
        ctx = span.context
        trace_id = hex_id(ctx.trace_id, 32) if ctx else None
        span_id = hex_id(ctx.span_id, 16) if ctx else None
        for ev in span.events:
            if ev.name == TRANSITION:
                yield event_from_attributes(ev.attributes, trace_id, span_id, ev.timestamp)


def log_transitions(records: Sequence[ReadableLogRecord]) -> Iterator[dict[str, Any]]:
    for item in records:
        rec = getattr(item, "log_record", item)
        if rec.event_name == TRANSITION:
            yield event_from_attributes(
                rec.attributes, hex_id(rec.trace_id, 32), hex_id(rec.span_id, 16), rec.timestamp
            )


class _Store:
    """One connection for an exporter; exports may come from the processor's thread."""

    def __init__(self, db: Any, wait_s: float, name: str):
        self.con, self.owned = connect(db, wait_s)
        self.lock = threading.Lock()
        self.name = name
        self.closed = False

    def store(self, events: list[dict[str, Any]], source: str) -> bool:
        if not events:
            return True
        with self.lock:
            if self.closed:
                health.dropped(self.name, "shut down", len(events))
                return False
            return store_lines(self.con, [render(e) for e in events], source, self.name)

    def shutdown(self) -> None:
        """Stop storing; close the connection only if this exporter opened it."""
        with self.lock:
            if not self.closed:
                self.closed = True
                if self.owned:
                    with contextlib.suppress(duckdb.Error):
                        self.con.close()


class DuckDBSpanExporter(SpanExporter):
    """``provider.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter("audit.duckdb")))``;
    ``db``: a path or an open DuckDB connection (not closed on shutdown). It stores the
    span events ``audit.configure(span_events=True)`` adds."""

    def __init__(self, db: Any = None, *, wait_s: float = 10.0, name: str = "otel-span-exporter"):
        self._store = _Store(db, wait_s, name)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        ok = self._store.store(list(span_transitions(spans)), "otel:spans")
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._store.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class DuckDBLogExporter(LogRecordExporter):
    """``provider.add_log_record_processor(SimpleLogRecordProcessor(DuckDBLogExporter(db)))``
    for records emitted by `audit.OTelLogSink` (``event_name="field.transition"``)."""

    def __init__(self, db: Any = None, *, wait_s: float = 10.0, name: str = "otel-log-exporter"):
        self._store = _Store(db, wait_s, name)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        ok = self._store.store(list(log_transitions(batch)), "otel:logs")
        return LogRecordExportResult.SUCCESS if ok else LogRecordExportResult.FAILURE

    def shutdown(self) -> None:
        self._store.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
