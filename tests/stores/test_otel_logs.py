"""`events` as a view over the OpenTelemetry Collector's ClickHouse exporter's logs table.

The table is made with the exporter's own schema (its logs_table.sql, EventName included)
and filled as the exporter fills it from `audit`'s log records: the attributes that
`audit.emit.otel_attributes` makes, as text in `LogAttributes`. The detectors then find on
the view what they find on a DuckDB store of the same events.
"""

from __future__ import annotations

import json
from datetime import datetime

import pyarrow as pa
import pytest

from audit.config import Config
from audit.emit import otel_attributes
from collectors.store import open_store
from collectors.stores import ingest
from queries import check, timeline

chdb = pytest.importorskip("chdb")

# The exporter's table (opentelemetry-collector-contrib, exporter/clickhouseexporter,
# internal/sqltemplates/logs_table.sql), skip indexes and TTL left out.
OTEL_LOGS = """
CREATE TABLE otel_logs (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TimestampTime DateTime DEFAULT toDateTime(Timestamp),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    TraceFlags UInt8,
    SeverityText LowCardinality(String) CODEC(ZSTD(1)),
    SeverityNumber UInt8,
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Body String CODEC(ZSTD(1)),
    ResourceSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion LowCardinality(String) CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    LogAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    EventName String CODEC(ZSTD(1))
) ENGINE = MergeTree
PARTITION BY toDate(TimestampTime)
ORDER BY (ServiceName, TimestampTime, Timestamp)
"""


def transitions() -> list[dict]:
    base = {"event": "field.transition", "entity": "block-A", "entity_type": "block",
            "field": "content"}
    return [
        {**base, "event_id": "w", "ts": "2024-05-01T10:00:00.000001+00:00", "old": {"t": "x"},
         "new": {"t": "done"}, "writer": "workflow", "base_version": 1, "version": 2},
        {**base, "event_id": "i", "ts": "2024-05-01T10:00:01.5+00:00", "old": {"t": "x"},
         "new": [1, "tpl"], "writer": "instantiation", "base_version": 1, "version": 3,
         "attrs": {"job": 7}, "source_ts": "2024-05-01T10:00:01+00:00"},
        {**base, "event_id": "p", "ts": "2024-05-01T10:00:02+00:00", "old": [1, "tpl"],
         "new": {"t": "x"}, "writer": "polling_sync", "actor": "poller-1",
         "source_ts": "2024-05-01T09:00:00+00:00"},
        {**base, "event_id": "b", "ts": "2024-05-01T10:00:03+00:00", "field": "seen",
         "change": "changed", "new": 5, "writer": "heartbeat"},  # blind
    ]


def records() -> pa.Table:
    """Rows as the exporter writes them: one per log record."""
    rows = []
    for n, event in enumerate(transitions()):
        attributes = {k: str(v) for k, v in otel_attributes(event).items()}
        moment = datetime.fromisoformat(event["ts"])
        rows.append({"Timestamp": moment, "TraceId": f"{n:032x}", "SpanId": f"{n:016x}",
                     "ServiceName": "api", "Body": "", "LogAttributes": attributes,
                     "EventName": "field.transition"})
    # Not transitions: another event, and a transition without its entity.
    rows.append({**rows[0], "EventName": "http.request", "LogAttributes": {"path": "/"}})
    rows.append({**rows[1], "LogAttributes": {k: v for k, v in rows[1]["LogAttributes"].items()
                                              if k != "entity"}})
    # An older exporter's record: no event name, the attribute `event` says it.
    older = transitions()[0] | {"event_id": "old-style", "ts": "2024-05-01T11:00:00+00:00",
                                "entity": "block-B"}
    rows.append({**rows[0], "EventName": "",
                 "LogAttributes": {k: str(v) for k, v in otel_attributes(older).items()}
                 | {"event": "field.transition"}})
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("Timestamp", pa.timestamp("ns", tz="UTC")), ("TraceId", pa.string()),
        ("SpanId", pa.string()), ("ServiceName", pa.string()), ("Body", pa.string()),
        ("LogAttributes", pa.map_(pa.string(), pa.string())), ("EventName", pa.string())]))


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("otel")
    con = chdb.connect(str(tmp / "store"))
    try:
        con.query(OTEL_LOGS)
        otel_rows = records()  # noqa: F841 - read by chdb's Python() by name
        con.query("INSERT INTO otel_logs (Timestamp, TraceId, SpanId, ServiceName, Body, "
                  "LogAttributes, EventName) SELECT * FROM Python(otel_rows)")
    finally:
        con.close()
    store = open_store(f"chdb:{tmp / 'store'}?otel_logs=otel_logs")
    try:
        on_view = ([f.to_dict() for f in check(store, config=Config())],
                   timeline(store, "block-A", config=Config()),
                   store.execute("SELECT count(*), count(DISTINCT seq) FROM events").fetchall())
    finally:
        store.close()
    jsonl = tmp / "events.jsonl"
    lines = [{**e, "trace_id": f"{n:032x}", "span_id": f"{n:016x}"}
             for n, e in enumerate(transitions())]
    jsonl.write_text("".join(json.dumps(e) + "\n" for e in lines))
    duck = open_store(tmp / "store.duckdb")
    try:
        ingest(duck, [str(jsonl)])
        on_duckdb = ([f.to_dict() for f in check(duck, config=Config())],
                     timeline(duck, "block-A", config=Config()))
    finally:
        duck.close()
    return on_view, on_duckdb


def test_the_view_takes_transitions_only(compared):
    (_, _, counts), _ = compared
    assert counts == [(5, 5)]  # four transitions of block-A and the older exporter's one


def test_findings_on_the_view_equal_those_of_an_ingested_store(compared):
    (findings, _, _), (expected, _) = compared
    assert {f["detector"] for f in expected} >= {"lost_update", "stale_overwrite"}
    assert findings == expected


def test_the_timeline_reads_the_same(compared):
    (_, view_timeline, _), (_, duck_timeline) = compared

    def comparable(rows):
        return [{k: v for k, v in row.items() if k != "seq"} for row in rows]

    assert [row["event_id"] for row in duck_timeline] == ["w", "i", "p", "b"]
    assert comparable(view_timeline) == comparable(duck_timeline)
