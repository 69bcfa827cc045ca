"""Emission: structlog JSON lines in the contract format, OpenTelemetry ids and span events."""

from __future__ import annotations

import io

import jsonschema
import orjson
import pytest
import structlog
from instrument_support import ListSink
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import audit
from audit.event import json_schema

pytestmark = pytest.mark.usefixtures("fresh_audit")


@pytest.fixture(scope="module")
def tracing():
    """A real SDK TracerProvider with an in-memory exporter (not installed globally)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


def _write_a_block():
    @audit.tracked(entity_type="block")
    def apply(doc):
        doc["content"] = "new"
        doc["indexingList"][0]["status"] = "done"
        doc["extra"] = {"nested": [1, 2.5, None, True]}
        del doc["gone"]

    doc = {"id": "block-A", "content": "old", "indexingList": [{"status": "x"}], "gone": 1}
    with audit.writer("workflow", actor="engine-1"):
        apply(doc)


def test_json_lines_pass_the_contract_schema():
    out = io.BytesIO()
    audit.configure(sink=audit.JSONLinesSink(out), otel=False)
    _write_a_block()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    schema = json_schema()
    for line in lines:
        event = orjson.loads(line)
        jsonschema.validate(event, schema)
        assert next(iter(event)) == "event"  # "event" leads the line
    changes = {orjson.loads(x)["field"]: orjson.loads(x)["change"] for x in lines}
    assert changes == {"content": "changed", "indexingList.0.status": "changed",
                       "extra": "added", "gone": "removed"}


def test_text_stream_and_file_path(tmp_path):
    text = io.StringIO()
    path = tmp_path / "events.jsonl"
    file_sink = audit.JSONLinesSink(path)
    audit.configure(sink=[audit.JSONLinesSink(text), file_sink], otel=False)
    audit.record("e", {"a": 1}, {"a": 2})
    file_sink.flush()
    assert orjson.loads(text.getvalue())["new"] == 2
    assert orjson.loads(path.read_bytes())["new"] == 2


def test_trace_and_span_ids_are_those_of_the_active_span(tracing):
    tracer, exporter = tracing
    exporter.clear()
    sink = ListSink()
    audit.configure(sink=sink, otel=True, span_events=True)
    with tracer.start_as_current_span("apply-sse-update") as span:
        _write_a_block()
        ctx = span.get_span_context()
    _write_a_block()  # outside any span: no ids

    inside, outside = sink.events[:4], sink.events[4:]
    for e in inside:
        assert e["trace_id"] == format(ctx.trace_id, "032x")
        assert e["span_id"] == format(ctx.span_id, "016x")
        jsonschema.validate(e, json_schema())
    for e in outside:
        assert "trace_id" not in e and "span_id" not in e

    (finished,) = exporter.get_finished_spans()
    span_events = [ev for ev in finished.events if ev.name == "field.transition"]
    assert [ev.attributes["field"] for ev in span_events] == [e["field"] for e in inside]
    first = span_events[0].attributes
    assert first["entity"] == "block-A" and first["writer"] == "workflow"
    assert orjson.loads(first["old"]) == "old" and orjson.loads(first["new"]) == "new"
    assert first["event_id"] == inside[0]["event_id"]


def test_span_events_are_off_unless_asked_for(tracing):
    """OpenTelemetry is deprecating span events for log-based events: by default a write in
    a span carries the span's ids, and the span gets no event (`OTelLogSink` sends them as
    logs, correlated by the SDK)."""
    tracer, exporter = tracing
    exporter.clear()
    sink = ListSink()
    audit.configure(sink=sink)
    with tracer.start_as_current_span("s") as span:
        audit.record("e", {"a": 1}, {"a": 2})
    assert sink.events[0]["span_id"] == format(span.get_span_context().span_id, "016x")
    assert exporter.get_finished_spans()[0].events == ()


def test_otel_off_adds_nothing(tracing):
    tracer, exporter = tracing
    exporter.clear()
    sink = ListSink()
    audit.configure(sink=sink, otel=False, span_events=True)
    with tracer.start_as_current_span("s"):
        audit.record("e", {"a": 1}, {"a": 2})
    assert "trace_id" not in sink.events[0]
    assert exporter.get_finished_spans()[0].events == ()


def test_structlog_sink_puts_transitions_in_the_applications_own_log():
    out = io.BytesIO()
    app_logger = structlog.wrap_logger(
        structlog.BytesLogger(out),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
    )
    audit.configure(sink=audit.StructlogSink(app_logger), otel=False)
    app_logger.info("request.start", path="/blocks/A")
    _write_a_block()
    lines = [orjson.loads(x) for x in out.getvalue().splitlines()]
    assert lines[0]["event"] == "request.start"  # an ordinary line, skipped by ingest
    assert len(lines) == 5  # and the write's four transitions after it
    for event in lines[1:]:
        assert event["event"] == "field.transition" and event["level"] == "info"
        jsonschema.validate(event, json_schema())


def test_otel_log_sink_emits_log_records_with_the_span_context(tracing):
    tracer, _ = tracing
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    audit.configure(sink=audit.OTelLogSink(provider), otel=True)
    with tracer.start_as_current_span("s") as span:
        audit.record("e", {"a": 1}, {"a": 2}, entity_type="thing")
    (record,) = exporter.get_finished_logs()
    rec = record.log_record
    assert rec.event_name == "field.transition"
    assert rec.trace_id == span.get_span_context().trace_id
    assert rec.attributes["entity"] == "e" and orjson.loads(rec.attributes["new"]) == 2
    assert orjson.loads(rec.body)["field"] == "a"


def test_a_processor_may_drop_events_on_purpose():
    def no_rejected(_logger, _name, event):
        if event.get("attrs", {}).get("rejected"):
            raise structlog.DropEvent
        return event

    sink = ListSink()
    audit.configure(sink=sink, processors=[no_rejected], otel=False)
    assert audit.record("e", {"a": 1}, {"a": 2}, attrs={"rejected": True}) == []
    assert len(audit.record("e", {"a": 1}, {"a": 2})) == 1
    assert len(sink.events) == 1
    assert "pipeline" not in audit.stats()["sinks"]


def test_processors_run_in_order_and_see_the_event():
    seen = []

    def tag(_logger, _name, event):
        event.setdefault("attrs", {})["region"] = "eu"
        seen.append(event["field"])
        return event

    sink = ListSink()
    audit.configure(sink=sink, processors=[tag], otel=False)
    events = audit.record("e", {"a": 1}, {"a": 2})
    assert seen == ["a"]
    assert sink.events[0]["attrs"] == {"region": "eu"} == events[0]["attrs"]
