"""Emission: each transition is one event ``field.transition``, one JSON line.

A structlog-style chain: small processors ``(logger, method_name, event_dict)`` (redact, add
the active OpenTelemetry span's ids, and the event to that span where asked, then any of
the user's), called in order by `emit`, which renders each event once with orjson and hands
it to each sink. A processor may drop an event (``raise structlog.DropEvent``). A sink that
fails is counted and skipped (`audit.health`), never raised into the write.

OpenTelemetry is imported when the first event is emitted, not with ``import audit``;
structlog only for the user's processors and `StructlogSink`.
"""

from __future__ import annotations

import dataclasses
import io
import threading
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

from audit import exact_json, health, settings
from audit.event import TRANSITION
from audit.redact import redactor

# Keys whose values are any JSON: span events and log records only hold primitives, so
# these travel there as JSON text.
JSON_KEYS = ("old", "new", "attrs")
# Beyond a double, a number is refused by the ingest (collectors/rules.py): a Decimal that
# large is written as text instead.
_DOUBLE_MAX = Decimal("1.7976931348623157e308")


def json_default(value: Any) -> Any:
    """What orjson cannot serialise itself: sets, models, dataclasses, decimals, anything
    else as str."""
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:
            return sorted(value, key=repr)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(type(value), "__attrs_attrs__"):
        import attrs

        return attrs.asdict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):  # PostgreSQL's numeric, as psycopg reads it: a number
        if not value.is_finite():
            return None  # as NaN and Infinity floats are written
        return orjson.Fragment(str(value)) if abs(value) <= _DOUBLE_MAX else str(value)
    return str(value)


def render(event: dict[str, Any]) -> bytes:
    """One event as one line of JSON (no newline), the contract format."""
    try:  # orjson itself first: this runs on every tracked write
        return orjson.dumps(event, default=json_default, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:  # rare: an integer beyond 64 bits, written as its digits
        return exact_json.dumps_refused(
            event, default=json_default, option=orjson.OPT_NON_STR_KEYS
        )


_PRIMITIVES = frozenset((str, bool, int, float))
_NOT_ATTRIBUTES = ("event", "trace_id", "span_id", *JSON_KEYS)


def otel_attributes(event: dict[str, Any]) -> dict[str, Any]:
    """The event as span-event / log-record attributes: primitives, JSON text for values."""
    # A copy with a few keys popped, and the types checked by C loops: a comprehension
    # over the keys and a test per value cost twice as much, on every event in a span.
    out = dict(event)
    pop = out.pop
    for key in _NOT_ATTRIBUTES:
        pop(key, None)
    if not _PRIMITIVES.issuperset(map(type, out.values())):  # rare: None, str subclasses, …
        out = {
            k: v if isinstance(v, str | bool | int | float) else render(v).decode()
            for k, v in out.items() if v is not None
        }
    for key in JSON_KEYS:
        if key in event:
            out[key] = render(event[key]).decode()
    return out


# --- processors ---------------------------------------------------------------------------


def _current_span() -> Any:
    from opentelemetry import trace

    global _get_span
    _get_span = trace.get_current_span
    return _get_span()


_get_span: Callable[[], Any] = _current_span


_last_ids: tuple[int, int, str, str] = (0, 0, "", "")  # the span seen last, its ids as hex


def _add_ids(span: Any, event: dict[str, Any]) -> None:
    """The span's ids on the event, where it has valid ones (not outside any span)."""
    global _last_ids
    ctx = span.get_span_context()
    if ctx.is_valid:
        ids = _last_ids  # a span's writes come one after another: format its ids once
        if ids[0] != ctx.span_id or ids[1] != ctx.trace_id:
            ids = _last_ids = (
                ctx.span_id, ctx.trace_id, format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
            )
        event["trace_id"] = ids[2]
        event["span_id"] = ids[3]


def add_span_ids(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Add ``trace_id``/``span_id`` of the active OpenTelemetry span, when there is one."""
    _add_ids(_get_span(), event)
    return event


def add_span(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """`add_span_ids`, and record the transition as an event of that span when it records
    (``configure(span_events=True)``), so traces show it too. One processor for both: the
    span is looked up once per event."""
    span = _get_span()
    _add_ids(span, event)
    if span.is_recording():
        span.add_event(TRANSITION, attributes=otel_attributes(event))
    return event


# --- sinks --------------------------------------------------------------------------------


def sink_name(sink: Any) -> str:
    return (
        getattr(sink, "name", None)
        or getattr(sink, "__name__", None)
        or type(sink).__name__
    )


class JSONLinesSink:
    """Write each event as a JSON line to a stream (``sys.stdout``) or a file path."""

    def __init__(self, target: Any, *, name: str | None = None):
        if isinstance(target, str) or hasattr(target, "__fspath__"):
            self._stream: Any = open(target, "ab")  # noqa: SIM115 - lives as long as the sink
            self.name = name or f"jsonl:{target}"
        else:
            self._stream = target
            self.name = name or "jsonl"
        self._text = isinstance(self._stream, io.TextIOBase)
        self._lock = threading.Lock()

    def write_line(self, line: bytes) -> None:
        with self._lock:
            if self._text:
                self._stream.write(line.decode() + "\n")
            else:
                self._stream.write(line + b"\n")

    def flush(self) -> None:
        with self._lock:
            self._stream.flush()


class StructlogSink:
    """Hand each event to the application's own structlog logger, so its JSON log holds the
    transitions and can be ingested as it is (``audit ingest app.log``)."""

    def __init__(self, logger: Any, *, name: str = "structlog"):
        self._logger = logger
        self.name = name

    def __call__(self, event: dict[str, Any]) -> None:
        self._logger.info(TRANSITION, **{k: v for k, v in event.items() if k != "event"})


class OTelLogSink:
    """Emit each event as an OpenTelemetry log record (``event_name="field.transition"``),
    for pipelines that ship logs; the active span's context is attached by the SDK."""

    def __init__(self, logger_provider: Any = None, *, name: str = "otel-logs"):
        from opentelemetry._logs import get_logger

        self._logger = get_logger("conflict-audit", logger_provider=logger_provider)
        self.name = name

    def __call__(self, event: dict[str, Any]) -> None:
        self._logger.emit(
            event_name=TRANSITION,
            body=render(event).decode(),
            attributes=otel_attributes(event),
        )


# --- the pipeline -------------------------------------------------------------------------


def _slots(sinks: tuple[Any, ...]) -> tuple[tuple[str, Any, Any, bool], ...]:
    """Each sink with its name in the counters, its ``write_line`` (None: it takes dicts),
    and whether `emit` counts what it sent."""
    names: dict[str, int] = {}
    slots = []
    for sink in sinks:
        name = sink_name(sink)
        names[name] = names.get(name, 0) + 1
        if names[name] > 1:
            name = f"{name}#{names[name]}"
        write_line = getattr(sink, "write_line", None)
        # Buffering sinks count `sent` themselves, once events are really stored.
        counted = not getattr(sink, "reports_health", False)
        slots.append((name, write_line if callable(write_line) else None, sink, counted))
    return tuple(slots)


class _Logger:
    """What the processors get as their ``logger`` argument: the chain ends in `emit`, not in
    a logger, so this only names it (for processors such as ``add_logger_name``)."""

    name = "audit"


_LOGGER = _Logger()


class _Pipeline:
    """The processors and sinks of one `Settings`, built once per settings.

    The processors are called directly, as structlog calls them (``(logger, "info",
    event_dict)``, each returning the dict for the next); structlog's bound logger around
    them cost a third of a tracked write's emission and gave nothing a write uses.
    """

    def __init__(self, s: settings.Settings):
        procs: list[Any] = []
        if s.redact:
            procs.append(redactor(s.redact, s.redact_key))
        if s.otel and _otel_available():
            procs.append(add_span if s.span_events else add_span_ids)
        procs += s.processors
        self.settings = s
        self.processors = tuple(procs)
        self.sinks = _slots(s.sinks)
        # How a processor drops an event on purpose; structlog is imported only for the
        # user's processors, which may raise it.
        self.drop: type[BaseException] = _NeverRaised
        if s.processors:
            import structlog

            self.drop = structlog.DropEvent


class _NeverRaised(Exception):
    """Stands in for structlog's DropEvent when only this package's processors run."""


def _otel_available() -> bool:
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        return False
    return True


_pipeline: _Pipeline | None = None
_build_lock = threading.Lock()


def pipeline() -> _Pipeline:
    global _pipeline
    s = settings.current()
    p = _pipeline
    if p is None or p.settings is not s:
        with _build_lock:
            p = _pipeline
            if p is None or p.settings is not s:
                p = _pipeline = _Pipeline(s)
    return p


def emit(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Send events down the chain; returns them as the sinks saw them (redacted, with ids).

    Each event goes through the processors once and is rendered once, as a JSON line,
    for all the sinks that take lines. A processor may drop an event on purpose
    (``raise structlog.DropEvent``): it is left out of the result. Never raises: a failing
    processor loses the event (counted under ``pipeline``), a failing sink its copy.
    """
    try:
        p = pipeline()
    except Exception as exc:
        health.count(len(events), {}, [("pipeline", exc, len(events))])
        return events
    procs, drop = p.processors, p.drop
    out = []
    failures: list[tuple[str, BaseException, int]] = []
    for event in events:
        if "event" not in event:
            event = {"event": TRANSITION, **event}  # "event" leads each line
        if procs:
            try:
                for proc in procs:
                    event = proc(_LOGGER, "info", event)
            except drop:
                continue
            except Exception as exc:
                failures.append(("pipeline", exc, 1))
                continue
        out.append(event)
    sent: dict[str, int] = {}
    lines: list[bytes | None] = [None] * len(out)  # rendered on first need, once
    for name, write_line, sink, counted in p.sinks:
        n = 0
        for i, event in enumerate(out):
            try:
                if write_line is not None:
                    line = lines[i]
                    if line is None:
                        line = lines[i] = render(event)
                    write_line(line)
                else:
                    sink(event)
                n += 1
            except Exception as exc:
                failures.append((name, exc, 1))
        if counted:
            sent[name] = n
    health.count(len(events), sent, failures)
    return out


def flush() -> None:
    """Flush every configured sink that can be flushed (failures are counted, not raised)."""
    for sink in settings.current().sinks:
        fl = getattr(sink, "flush", None)
        if callable(fl):
            try:
                fl()
            except Exception as exc:
                health.dropped(sink_name(sink), exc, 0)
