"""The one mapping from OpenTelemetry attributes back to a transition event.

`audit.emit.otel_attributes` turns an event into span-event / log-record attributes
(primitives, with ``old``, ``new`` and ``attrs`` as JSON text); `event_from_attributes` is
its inverse. The DuckDB exporters (`collectors.otel_exporter`) and the HTTP collector
(`collectors.otlp`, behind ``audit serve``) both rebuild events with it, so a transition
reads the same whichever way it came.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from audit import exact_json, timestamps
from audit.emit import JSON_KEYS
from audit.event import TRANSITION


def hex_id(value: int | None, digits: int) -> str | None:
    """An OpenTelemetry trace or span id as the event carries it (lower-case hex, padded);
    None for none (0 is OpenTelemetry's invalid id)."""
    return format(value, f"0{digits}x") if value else None


def event_from_attributes(
    attributes: Mapping[str, Any] | None, trace_id: str | None, span_id: str | None,
    timestamp_ns: int | None = None,
) -> dict[str, Any]:
    """Rebuild a contract event from span-event / log-record attributes.

    ``trace_id``/``span_id``: hex (`hex_id`), None for none. ``old``, ``new`` and ``attrs``
    given as text are JSON text (text that is not JSON is kept as the string it is); given
    as structured values (OTLP arrays and key-value lists, from other languages) they are
    taken as they are. The record's time stands in for a missing ``ts``.
    """
    event: dict[str, Any] = {"event": TRANSITION, **(attributes or {})}
    for key in JSON_KEYS:
        value = event.get(key)
        if type(value) is str:
            try:
                event[key] = exact_json.loads(value)
            except orjson.JSONDecodeError:
                continue  # text that is not JSON stays the string it is
    if trace_id:
        event["trace_id"] = trace_id
    if span_id:
        event["span_id"] = span_id
    if "ts" not in event and timestamp_ns:
        event["ts"] = timestamps.from_ns(timestamp_ns)
    return event
