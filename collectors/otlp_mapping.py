"""The one mapping from OpenTelemetry attributes back to a transition event.

`audit.emit.otel_attributes` turns an event into span-event / log-record attributes
(primitives, with ``old``, ``new`` and ``attrs`` as JSON text); `event_from_attributes` is
its inverse. The DuckDB exporters (`collectors.otel_exporter`) and the HTTP collector
(`collectors.otlp`, behind ``audit serve``) both rebuild events with it, so a transition
reads the same whichever way it came.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from audit.emit import JSON_KEYS
from audit.event import TRANSITION


def rfc3339_from_ns(ns: int) -> str:
    """Nanoseconds since the epoch as an RFC 3339 UTC time, to the microsecond."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return (
        datetime.fromtimestamp(seconds, UTC)
        .replace(microsecond=rest // 1000)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z")
    )


def event_from_attributes(
    attributes: Mapping[str, Any] | None, trace_id: int | None, span_id: int | None,
    timestamp_ns: int | None = None,
) -> dict[str, Any]:
    """Rebuild a contract event from span-event / log-record attributes.

    ``old``, ``new`` and ``attrs`` given as text are JSON text (text that is not JSON is
    kept as the string it is); given as structured values (OTLP arrays and key-value
    lists, from other languages) they are taken as they are. The record's time stands in
    for a missing ``ts``.
    """
    event: dict[str, Any] = {"event": TRANSITION}
    for key, value in (attributes or {}).items():
        if key in JSON_KEYS and isinstance(value, str):
            try:
                event[key] = orjson.loads(value)
            except orjson.JSONDecodeError:
                event[key] = value
        else:
            event[key] = value
    if trace_id:
        event["trace_id"] = format(trace_id, "032x")
    if span_id:
        event["span_id"] = format(span_id, "016x")
    if "ts" not in event and timestamp_ns:
        event["ts"] = rfc3339_from_ns(timestamp_ns)
    return event
