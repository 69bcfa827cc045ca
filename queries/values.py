"""Values as the detectors hand them over: canonical JSON text and timestamps.

Readers must survive any row already in a store, whatever wrote it: DuckDB's JSON type takes
`NaN`, `Infinity` and numbers beyond a double, and its TIMESTAMPTZ reaches far beyond the
years 1 to 9999 Python can hold (it hands those back as text, and ±infinity as naive bounds).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from audit import timestamps
from audit.errors import AuditError

_DECODER = json.JSONDecoder()


def parse_value(text: str | None) -> Any:
    """The JSON value stored as canonical text; None when the key was absent.

    `NaN` and `±Infinity` become floats, integers keep every digit; text that is not JSON
    at all (DuckDB's JSON type accepts a little of it) comes back as that text.
    """
    if text is None:
        return None
    # A stored value is canonical text, so its decoding starts at 0 and ends at its end:
    # `raw_decode` then answers as `json.loads` would, without the two whitespace scans
    # around it (a check parses every witness's old and new: 360k values at 100M events).
    try:
        value, end = _DECODER.raw_decode(text)
        if end == len(text):
            return value
    except ValueError:
        pass
    try:  # whitespace around the value, or no JSON at all
        return json.loads(text)
    except ValueError:
        return text


def dump_value(value: Any) -> str:
    """A value as canonical JSON text (sorted keys, no spaces), whatever its numbers: the
    standard library's encoder, because orjson writes NaN as null and refuses integers
    beyond 64 bits."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def rfc3339(ts: datetime | str | None) -> str | None:
    """RFC 3339 in UTC, `Z` suffix: the form findings and witnesses carry.

    A moment Python cannot hold stays as DuckDB wrote it (``'294247-01-01 00:00:00+00'``,
    ``'infinity'``)."""
    if ts is None or isinstance(ts, str):
        return ts
    if ts.tzinfo is None:  # DuckDB's stand-in for ±infinity in a TIMESTAMPTZ column
        return "infinity" if ts.year == datetime.max.year else "-infinity"
    try:
        return timestamps.from_datetime(ts)
    except OverflowError:  # held in local time, but before year 1 in UTC
        return ts.isoformat()


def parse_timestamp(text: str, option: str = "timestamp") -> datetime:
    """An RFC 3339 timestamp with offset, or an AuditError naming ``option``."""
    try:
        return timestamps.parse(text)
    except ValueError as exc:
        raise AuditError(f"{option}: {exc}") from None


def to_timestamp(value: datetime | str | None, option: str = "timestamp") -> datetime | None:
    """Accept a datetime (naive means UTC) or RFC 3339 text; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        return parse_timestamp(value, option)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
