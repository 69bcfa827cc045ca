"""The transition event: the one definition of what an event is.

Everything else derives from the table below: the JSON Schema that `audit schema` prints,
the validation the bulk ingest runs in SQL, and the columns of the store.
"""

from __future__ import annotations

import json
from typing import Any, Final

TRANSITION: Final = "field.transition"
CHANGE_KINDS: Final = ("changed", "added", "removed")

# key -> (kind, required, description). Kinds: string, timestamp, integer, json, object,
# change, hex. Order is the canonical key order used for derived event ids.
EVENT_KEYS: Final[dict[str, tuple[str, bool, str]]] = {
    "event": (
        "string",
        False,
        '"field.transition" when present; other values mark ordinary log lines',
    ),
    "event_id": (
        "string",
        False,
        "unique id, the de-duplication key; derived from the line when absent",
    ),
    "ts": ("timestamp", True, "when the write was applied (committed), RFC 3339 with offset"),
    "entity": ("string", True, "id of the thing written, e.g. block-A"),
    "entity_type": ("string", False, "e.g. block, workspace"),
    "field": ("string", True, "dotted path, list indexes as numbers; $ = the whole entity"),
    "change": ("change", False, "changed (default), added or removed"),
    "old": (
        "json",
        False,
        "value before; absent for added, and for a blind write (changed without reading it)",
    ),
    "new": ("json", False, "value after; absent for removed"),
    "writer": (
        "string",
        True,
        "the source that wrote: user, workflow, instantiation, polling_sync, ...",
    ),
    "actor": ("string", False, "who inside the writer (user id, worker id)"),
    "write_id": ("string", False, "groups the events of one write"),
    "base_version": ("integer", False, "entity version the writer had read before it wrote"),
    "version": ("integer", False, "entity version this write produced"),
    "source_ts": ("timestamp", False, "when the carried data was produced at its source"),
    "priority": ("integer32", False, "overrides the writer's configured priority"),
    "trace_id": ("hex", False, "OpenTelemetry trace id of the span that wrote"),
    "span_id": ("hex", False, "OpenTelemetry span id of the span that wrote"),
    "attrs": ("object", False, "anything else; kept, queryable"),
}

REQUIRED_KEYS: Final = tuple(k for k, (_, req, _) in EVENT_KEYS.items() if req)

# RFC 3339 date-time with a mandatory offset (Z or +hh:mm); a space instead of T is allowed.
# Hours 00-23 and minutes 00-59, in the time and in the offset; days are checked by the cast
# to a timestamp, and leap seconds (:60) are not taken.
_HOUR_MINUTE = r"([01]\d|2[0-3]):[0-5]\d"
RFC3339_PATTERN: Final = (
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt ]"
    rf"{_HOUR_MINUTE}:[0-5]\d(\.\d{{1,9}})?([Zz]|[+-]{_HOUR_MINUTE})"
)
# The instants a reader can represent (Python's datetime, in UTC): years 0001 to 9999.
TIMESTAMP_RANGE: Final = ("0001-01-01 00:00:00+00", "9999-12-31 23:59:59.999999+00")
HEX_PATTERN: Final = r"[0-9a-fA-F]{1,64}"
# Deeper values than this are rejected: nothing legitimate nests that far, and such lines
# are how parsers get knocked over.
MAX_DEPTH: Final = 64


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of one event line, for emitters in any language."""
    kind_schema: dict[str, dict[str, Any]] = {
        "string": {"type": "string"},
        "timestamp": {"type": "string", "pattern": f"^{RFC3339_PATTERN}$"},
        "integer": {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
        "integer32": {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
        "json": {},
        "object": {"type": "object"},
        "change": {"enum": list(CHANGE_KINDS)},
        "hex": {"type": "string", "pattern": f"^{HEX_PATTERN}$"},
    }
    props = {}
    for key, (kind, _, doc) in EVENT_KEYS.items():
        props[key] = {**kind_schema[kind], "description": doc}
    props["event"] = {"const": TRANSITION, "description": EVENT_KEYS["event"][2]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://conflict-audit.dev/schema/field-transition.json",
        "title": "conflict-audit field transition",
        "description": "One field of one entity changing in one write (one JSON object per line).",
        "type": "object",
        "required": list(REQUIRED_KEYS),
        "properties": props,
        "additionalProperties": True,
        "allOf": [
            {
                "if": {"properties": {"change": {"const": "added"}}, "required": ["change"]},
                "then": {"required": ["new"]},
            },
            {
                "if": {"properties": {"change": {"const": "removed"}}, "required": ["change"]},
                "then": {"required": ["old"]},
                "else": {"required": ["new"]},
            },
        ],
    }


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False)
