"""Events the OpenTelemetry Collector's ClickHouse exporter already writes, read in place.

A service that logs transitions through OpenTelemetry (`audit` emits a log record named
`field.transition` whose attributes carry the event's keys, with `old`, `new` and `attrs`
as JSON text: collectors/otlp_mapping.py) and ships its logs with the Collector's
`clickhouse` exporter has them in that exporter's logs table (`otel_logs`): one row per
record, the attributes in the `LogAttributes` map (text values). With
`--db 'clickhouse://…/DB?otel_logs=otel_logs'` (or `chdb:DIR?otel_logs=…`) the store's
`events` is a view over that table instead of a table of its own: nothing is copied.

What the view does not do that `audit ingest` does: it applies only the required-key rule
(records without entity, field or writer are left out; a time that cannot be read falls
back to the record's Timestamp), rejects nothing into `rejected_events`, and compares
values as the JSON text the emitter wrote (`audit` writes it the same way each time).
`seq`, the ingest order DuckDB counts, is the record's time in microseconds, times 1024,
plus 10 bits of a hash of the record: unique unless two records of one microsecond share
those bits.
"""

from __future__ import annotations

from typing import Any

from collectors.stores.dialect import quote

TRANSITION = "field.transition"


def events_view(store: Any, table: str) -> str:
    """The statement that makes `events` a view over the exporter's table ``table``."""
    columns = {row["name"] for row in store.query_arrow(
        "SELECT name FROM system.columns WHERE database = currentDatabase() "
        f"AND table = {quote(table)}").to_pylist()}
    if not {"Timestamp", "LogAttributes", "TraceId", "SpanId"} <= columns:
        raise ValueError(f"{table} is not a logs table of the OpenTelemetry ClickHouse "
                         "exporter (no Timestamp, LogAttributes, TraceId, SpanId)")
    named = f"EventName = '{TRANSITION}' OR " if "EventName" in columns else ""
    return f"""CREATE VIEW IF NOT EXISTS events AS
SELECT
    toInt64(toUnixTimestamp64Micro(Timestamp)) * 1024 + toInt64(cityHash64(record) % 1024)
        AS seq,
    if(a['event_id'] != '', a['event_id'], lower(hex(MD5(record)))) AS event_id,
    coalesce(parseDateTime64BestEffortOrNull(a['ts'], 6, 'UTC'),
             toDateTime64(Timestamp, 6, 'UTC')) AS ts,
    a['entity'] AS entity,
    nullIf(a['entity_type'], '') AS entity_type,
    a['field'] AS field,
    if(a['change'] = '', 'changed', a['change']) AS change,
    if(mapContains(a, 'old'), a['old'], NULL) AS old,
    if(mapContains(a, 'new'), a['new'], NULL) AS new,
    a['writer'] AS writer,
    nullIf(a['actor'], '') AS actor,
    nullIf(a['write_id'], '') AS write_id,
    toInt64OrNull(a['base_version']) AS base_version,
    toInt64OrNull(a['version']) AS version,
    parseDateTime64BestEffortOrNull(a['source_ts'], 6, 'UTC') AS source_ts,
    toInt32OrNull(a['priority']) AS priority,
    nullIf(if(TraceId != '', TraceId, a['trace_id']), '') AS trace_id,
    nullIf(if(SpanId != '', SpanId, a['span_id']), '') AS span_id,
    if(mapContains(a, 'attrs'), a['attrs'], NULL) AS attrs,
    {quote(table)} AS source,
    CAST(NULL AS Nullable(Int64)) AS line
FROM (
    SELECT *, LogAttributes AS a,
           concat(toString(Timestamp), TraceId, SpanId, toString(LogAttributes)) AS record
    FROM `{table.replace('`', '')}`
    WHERE ({named}LogAttributes['event'] = '{TRANSITION}')
      AND LogAttributes['entity'] != '' AND LogAttributes['field'] != ''
      AND LogAttributes['writer'] != ''
)"""
