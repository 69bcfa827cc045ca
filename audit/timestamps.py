"""Timestamps, parsed and formatted in one place: RFC 3339 with an offset (docs/contract.md §1).

What the package writes itself (the clock of a write, a collector's receipt time, an
OpenTelemetry record's time) is UTC to the microsecond with ``Z``, formatted by `from_ns`.
What a caller hands in (``source_ts``, a ``--since``) goes through `as_timestamp` (lenient:
the instrumentation never raises into a write) or `parse` (strict: an error names the value).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from audit.event import RFC3339_PATTERN

_RFC3339 = re.compile(RFC3339_PATTERN)

_second: tuple[int, str] = (0, "")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_YEAR_10000 = 253_402_300_800  # seconds since the epoch; gmtime formats the years 1970 to 9999


def _format_second(sec: int) -> tuple[int, str]:
    """``(sec, 'YYYY-MM-DDTHH:MM:SS')`` for a second in [0, _YEAR_10000), kept as the one
    the formatters below reuse until the clock moves on: they run on every tracked write, and
    a hit stays inline in them (a call on every hit cost 7 % more instructions, Callgrind)."""
    global _second
    _second = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)))
    return _second


def from_ns(ns: int) -> str:
    """Nanoseconds since the epoch as RFC 3339 UTC to the microsecond (``…T10:00:00.123456Z``)."""
    sec, rest = divmod(ns, 1_000_000_000)
    cached = _second
    if cached[0] != sec:
        if not 0 <= sec < _YEAR_10000:
            return from_datetime(datetime.fromtimestamp(sec, UTC).replace(microsecond=rest // 1000))
        cached = _format_second(sec)
    return f"{cached[1]}.{rest // 1000:06d}Z"


def from_micros(micros: int) -> str:
    """Microseconds since the epoch as `from_datetime` writes that moment (the fraction only
    when there is one), without making a datetime: how a check formats its witnesses' times
    (queries/runner.py). OverflowError outside the years 1 to 9999."""
    sec, rest = divmod(micros, 1_000_000)
    cached = _second
    if cached[0] != sec:
        if not 0 <= sec < _YEAR_10000:
            return from_datetime(_EPOCH + timedelta(microseconds=micros))
        cached = _format_second(sec)
    return f"{cached[1]}.{rest:06d}Z" if rest else f"{cached[1]}Z"


def to_micros(moment: datetime) -> int:
    """An aware datetime as microseconds since the epoch: what `from_micros` reads back."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def now() -> str:
    """The clock, as `from_ns` formats it."""
    return from_ns(time.time_ns())


def from_datetime(moment: datetime) -> str:
    """A datetime in UTC as RFC 3339 with ``Z`` (naive means UTC), to the microsecond when it
    has any."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse(text: str) -> datetime:
    """RFC 3339 text with an offset as an aware datetime; raises ValueError saying why.

    A space or lower-case ``t``/``z`` is accepted; digits finer than microseconds are dropped
    (Python keeps microseconds)."""
    text = text.strip()
    if not _RFC3339.fullmatch(text):
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp with offset "
                         "(e.g. 2025-01-31T12:00:00Z)")
    try:
        return datetime.fromisoformat(text.upper())  # Python reads no lower-case t or z
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid timestamp ({exc})") from None


def as_timestamp(value: Any) -> str | None:
    """RFC 3339 text for a datetime, epoch seconds, or ISO 8601 text; without an offset
    (naive) it is UTC. RFC 3339 text is kept as it is; text that is no timestamp too (the
    ingest rejects it with its reason: the instrumentation does not raise into the write)."""
    if value is None:
        return None
    if isinstance(value, str):
        if _RFC3339.fullmatch(value):
            return value
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).isoformat()
    raise TypeError(f"not a timestamp: {value!r}")
