"""OpenTelemetry exporters: transitions carried by span events and log records reach DuckDB."""

from __future__ import annotations

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

import audit
from collectors.otel_exporter import DuckDBLogExporter, DuckDBSpanExporter
from collectors.store import open_store

pytestmark = pytest.mark.usefixtures("fresh_audit")


def _apply_in_span(tracer, name: str, n: int) -> list[tuple[int, int]]:
    @audit.tracked(entity_type="block")
    def apply(doc, i):
        doc["content"] = f"{name}-{i}"
        doc["indexingList"] = [{"status": "done" if i % 2 else "processing"}]

    ids = []
    doc = {"id": f"block-{name}", "_meta": {"version": 0}}  # versioned: the tests order by it
    with audit.writer("workflow"):
        for i in range(n):
            with tracer.start_as_current_span(f"apply-{i}") as span:
                span.add_event("unrelated", {"k": 1})  # not a transition: ignored
                apply(doc, i)
                ctx = span.get_span_context()
                ids.append((ctx.trace_id, ctx.span_id))
    return ids


def test_span_events_are_stored_with_their_trace_ids(tmp_path):
    con = open_store(tmp_path / "o.duckdb")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter(con)))
    audit.configure(sink=None, otel=True, span_events=True)
    ids = _apply_in_span(provider.get_tracer("t"), "A", 5)
    provider.shutdown()

    rows = con.execute(
        "SELECT field, change, old, new, version, trace_id, span_id, source FROM events "
        "ORDER BY version, field"
    ).fetchall()
    assert len(rows) == 10
    for (field, _change, _old, new, version, trace_id, span_id, source) in rows:
        t, s = ids[version - 1]
        assert (trace_id, span_id) == (format(t, "032x"), format(s, "016x"))
        assert source == "otel:spans"
        if field == "content":
            assert new == f'"A-{version - 1}"'
    (first_list,) = [r for r in rows if r[0] == "indexingList" and r[4] == 1]
    assert first_list[1] == "added" and first_list[3] == '[{"status":"processing"}]'
    assert con.execute("SELECT count(*) FROM rejected_events").fetchall() == [(0,)]
    assert audit.stats()["sinks"]["otel-span-exporter"]["sent"] == 10
    con.close()


def test_batch_span_processor_flushes_into_the_store(tmp_path):
    db = tmp_path / "b.duckdb"
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DuckDBSpanExporter(db)))
    audit.configure(otel=True, span_events=True)
    _apply_in_span(provider.get_tracer("t"), "B", 20)
    provider.force_flush()
    provider.shutdown()  # closes the exporter's own connection
    con = open_store(db, read_only=True)
    assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchall() == [
        (40, 40)]
    con.close()


def test_log_records_from_the_otel_log_sink_are_stored(tmp_path):
    con = open_store(tmp_path / "l.duckdb")
    logs = LoggerProvider()
    logs.add_log_record_processor(SimpleLogRecordProcessor(DuckDBLogExporter(con)))
    tracing = TracerProvider()
    audit.configure(sink=audit.OTelLogSink(logs), otel=True)
    ids = _apply_in_span(tracing.get_tracer("t"), "L", 3)
    rows = con.execute(
        "SELECT trace_id, version, writer, source FROM events ORDER BY version").fetchall()
    assert len(rows) == 6
    for trace_id, version, writer, source in rows:
        assert trace_id == format(ids[version - 1][0], "032x")
        assert (writer, source) == ("workflow", "otel:logs")
    logs.shutdown()
    con.close()


def test_batched_log_records_and_other_records_are_ignored(tmp_path):
    db = tmp_path / "m.duckdb"
    logs = LoggerProvider()
    logs.add_log_record_processor(BatchLogRecordProcessor(DuckDBLogExporter(db)))
    logs.get_logger("app").emit(event_name="http.request", body="GET /", attributes={"a": 1})
    audit.configure(sink=audit.OTelLogSink(logs), otel=False)
    audit.record("e", {"a": 1}, {"a": 2})
    logs.force_flush()
    logs.shutdown()
    con = open_store(db, read_only=True)
    assert con.execute("SELECT entity, field, old, new FROM events").fetchall() == [
        ("e", "a", "1", "2")]
    con.close()
