"""OTLP/HTTP logs (``POST /v1/logs``): the requests the official exporters send, as events.

Both encodings of the OpenTelemetry protocol. Binary protobuf is parsed into
opentelemetry-proto's ``ExportLogsServiceRequest``. OTLP/JSON (what the JavaScript exporter
and browsers send) is read with orjson and walked as the same message: the protobuf JSON
parser (``json_format.ParseDict``) took 170-200 ms per 1,000 records here, forty times the
budget of a batch, and would read OTLP/JSON's hex trace ids as base64. The walk follows the
OTLP/JSON rules: lowerCamelCase keys (the proto field names are accepted too), 64-bit
integers as strings or numbers, hex ids, enums as integers (not read here).

A log record is a transition when its event name (or its attribute ``event``, or the older
``event.name``) is ``field.transition``; its attributes carry the keys of
docs/contract.md §1 and become an event through `collectors.otlp_mapping`, the mapping the
DuckDB exporters use. Resource attributes (``service.name``, …) go into ``attrs``; the
record's own ``attrs`` win a clash. Other records are skipped and counted.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterator
from typing import Any, Literal, NamedTuple

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from audit.event import TRANSITION
from collectors.otlp_mapping import event_from_attributes, hex_id
from collectors.serve_intake import Intake

Encoding = Literal["protobuf", "json"]
_EVENT_NAME_KEYS = ("event", "event.name")


class OTLPDecodeError(ValueError):
    """The body is not an ExportLogsServiceRequest in the encoding it claims."""


class _NoJSONForm(ValueError):
    """An attribute value JSON cannot hold (a NaN or infinite double)."""


class _Record(NamedTuple):
    """One log record, whichever encoding it came in."""

    resource: dict[str, Any]
    event_name: str
    attributes: dict[str, Any] | None  # None: `problem` says why it could not be read
    problem: str | None
    trace_id: str | None  # hex
    span_id: str | None
    time_ns: int


def intake_logs(body: bytes, encoding: Encoding, received_at: str) -> Intake:
    """The transitions of an export request, numbered as records in request order.
    Raises OTLPDecodeError for a body that is not a request."""
    records = _protobuf_records(body) if encoding == "protobuf" else _json_records(body)
    intake = Intake(received_at)
    for number, record in enumerate(records, start=1):
        if not _is_transition(record):
            intake.skipped += 1
            continue
        where = f"log record {number}"
        if record.attributes is None:
            intake.refuse(where, record.problem or "unreadable attributes")
            continue
        event = event_from_attributes(
            record.attributes, record.trace_id, record.span_id, record.time_ns
        )
        event.pop("event.name", None)  # the older attribute: its name is "event" now
        if record.resource:
            attrs = event.get("attrs")
            if attrs is None:
                event["attrs"] = dict(record.resource)
            elif isinstance(attrs, dict):
                event["attrs"] = {**record.resource, **attrs}
        intake.add(event, where)
    return intake


def _is_transition(record: _Record) -> bool:
    if record.event_name == TRANSITION:
        return True
    attributes = record.attributes or {}
    return any(attributes.get(key) == TRANSITION for key in _EVENT_NAME_KEYS)


def encode_response(intake: Intake, encoding: Encoding) -> bytes:
    """The ExportLogsServiceResponse: ``partial_success`` when records were refused."""
    response = ExportLogsServiceResponse()
    if intake.refused:
        response.partial_success.rejected_log_records = intake.refused
        response.partial_success.error_message = intake.refusals()
    if encoding == "protobuf":
        return response.SerializeToString()
    return json_format.MessageToJson(response, indent=None).encode()


# --- binary protobuf --------------------------------------------------------------------------


def _protobuf_records(body: bytes) -> Iterator[_Record]:
    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise OTLPDecodeError(f"not an ExportLogsServiceRequest: {exc}") from exc
    for resource_logs in request.resource_logs:
        resource = _pb_attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for rec in scope_logs.log_records:
                try:
                    attributes, problem = _pb_attributes(rec.attributes), None
                except _NoJSONForm as exc:
                    attributes, problem = None, str(exc)
                yield _Record(
                    resource, rec.event_name, attributes, problem,
                    _pb_id(rec.trace_id, 32), _pb_id(rec.span_id, 16),
                    rec.time_unix_nano or rec.observed_time_unix_nano,
                )


def _pb_id(raw: bytes, digits: int) -> str | None:
    if len(raw) * 2 == digits and raw.strip(b"\0"):
        return raw.hex()  # the usual case, without a detour through an int
    return hex_id(int.from_bytes(raw, "big"), digits)


def _pb_attributes(pairs: Any) -> dict[str, Any]:
    out = {}
    for kv in pairs:
        # Strings first, without asking which kind the value is: most attributes are
        # strings (JSON text for values included), and each question to the message costs.
        value = kv.value
        text = value.string_value
        out[kv.key] = text if text else _pb_value(value, value.WhichOneof("value"))
    return out


def _pb_value(value: Any, kind: str | None) -> Any:
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return None
    if kind == "kvlist_value":
        return _pb_attributes(value.kvlist_value.values)
    if kind == "array_value":
        return [_pb_value(v, v.WhichOneof("value")) for v in value.array_value.values]
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return _finite(getattr(value, kind))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise _NoJSONForm(f"the value {value} has no JSON form")
    return value


# --- OTLP/JSON --------------------------------------------------------------------------------


def _json_records(body: bytes) -> Iterator[_Record]:
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OTLPDecodeError(f"not an ExportLogsServiceRequest: not JSON ({exc.msg})") from exc
    for resource_logs in _field(message, "resourceLogs", "resource_logs", list):
        resource_message = _field(resource_logs, "resource", "resource", dict)
        resource = _json_attributes(_field(resource_message, "attributes", "attributes", list))
        for scope_logs in _field(resource_logs, "scopeLogs", "scope_logs", list):
            for rec in _field(scope_logs, "logRecords", "log_records", list):
                try:
                    attributes, problem = (
                        _json_attributes(_field(rec, "attributes", "attributes", list)),
                        None,
                    )
                except _NoJSONForm as exc:
                    attributes, problem = None, str(exc)
                yield _Record(
                    resource,
                    _field(rec, "eventName", "event_name", str),
                    attributes,
                    problem,
                    hex_id(_hex_id(_field(rec, "traceId", "trace_id", str), "traceId"), 32),
                    hex_id(_hex_id(_field(rec, "spanId", "span_id", str), "spanId"), 16),
                    _uint64(_field(rec, "timeUnixNano", "time_unix_nano", (int, str)))
                    or _uint64(
                        _field(rec, "observedTimeUnixNano", "observed_time_unix_nano", (int, str))
                    ),
                )


_EMPTY: dict[type, Any] = {list: [], dict: {}, str: ""}


def _field(message: Any, camel: str, snake: str, kind: type | tuple[type, ...]) -> Any:
    """A field of a JSON message, or the field's empty value when it is absent."""
    if not isinstance(message, dict):
        raise OTLPDecodeError(f"not an ExportLogsServiceRequest: {message!r:.60} is no object")
    value = message.get(camel, message.get(snake))
    if value is None:
        return _EMPTY.get(kind if isinstance(kind, type) else kind[0], 0)
    if not isinstance(value, kind):
        raise OTLPDecodeError(f"not an ExportLogsServiceRequest: {camel} is {value!r:.60}")
    return value


def _hex_id(text: str, name: str) -> int | None:
    if not text:
        return None
    try:
        return int(text, 16)
    except ValueError:
        raise OTLPDecodeError(f"{name} is not hex: {text!r:.60}") from None


def _uint64(value: str | int) -> int:
    try:
        return int(value)
    except ValueError:
        raise OTLPDecodeError(f"not a 64-bit integer: {value!r:.60}") from None


def _json_attributes(pairs: list[Any]) -> dict[str, Any]:
    out = {}
    for kv in pairs:  # written for the common case: {"key": k, "value": {"stringValue": s}}
        if type(kv) is not dict:
            _bad(kv)
        key, value = kv.get("key"), kv.get("value")
        if type(key) is not str or not (value is None or type(value) is dict):
            _bad(kv)
        text = value.get("stringValue") if value else None
        out[key] = text if text is not None else _json_value(value or {})
    return out


_SCALARS = (("stringValue", "string_value"), ("boolValue", "bool_value"))


def _json_value(value: dict[str, Any]) -> Any:
    for camel, snake in _SCALARS:
        if camel in value or snake in value:
            return value.get(camel, value.get(snake))
    if "intValue" in value or "int_value" in value:
        return _uint64(_field(value, "intValue", "int_value", (int, str)))
    if "doubleValue" in value or "double_value" in value:
        number = _field(value, "doubleValue", "double_value", (float, int, str))
        try:
            double = float(number)  # "NaN" and "Infinity" are proto3 JSON's
        except ValueError:
            raise OTLPDecodeError(f"not a double: {number!r:.60}") from None
        return _finite(double)
    if "kvlistValue" in value or "kvlist_value" in value:
        kvlist = _field(value, "kvlistValue", "kvlist_value", dict)
        return _json_attributes(_field(kvlist, "values", "values", list))
    if "arrayValue" in value or "array_value" in value:
        array = _field(value, "arrayValue", "array_value", dict)
        return [_json_value(v) if isinstance(v, dict) else _bad(v)
                for v in _field(array, "values", "values", list)]
    if "bytesValue" in value or "bytes_value" in value:
        text = _field(value, "bytesValue", "bytes_value", str)
        try:
            base64.b64decode(text, validate=True)
        except binascii.Error:
            raise OTLPDecodeError(f"bytesValue is not base64: {text!r:.60}") from None
        return text
    return None


def _bad(value: Any) -> Any:
    raise OTLPDecodeError(f"not an ExportLogsServiceRequest: {value!r:.60} is misplaced")
