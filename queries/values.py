"""Values as the detectors hand them over: canonical JSON text and timestamps."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson

from audit.errors import AuditError
from audit.event import RFC3339_PATTERN

_RFC3339 = re.compile(RFC3339_PATTERN)
_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_value(text: str | None) -> Any:
    """The JSON value stored as canonical text; None when the key was absent."""
    return None if text is None else orjson.loads(text)


def rfc3339(ts: datetime | None) -> str | None:
    """RFC 3339 in UTC, `Z` suffix: the form findings and witnesses carry."""
    if ts is None:
        return None
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_timestamp(text: str, option: str = "timestamp") -> datetime:
    """An RFC 3339 timestamp with offset, or an AuditError naming ``option``."""
    text = text.strip()
    if not _RFC3339.fullmatch(text):
        raise AuditError(
            f"{option}: {text!r} is not an RFC 3339 timestamp with offset "
            "(e.g. 2025-01-31T12:00:00Z)"
        )
    # Python keeps microseconds: drop finer digits; accept a lower-case t/z and a space.
    norm = _FRACTION.sub(r"\1", text).replace("t", "T").replace("z", "Z").replace(" ", "T")
    try:
        return datetime.fromisoformat(norm)
    except ValueError as exc:
        raise AuditError(f"{option}: {text!r} is not a valid timestamp ({exc})") from None


def to_timestamp(value: datetime | str | None, option: str = "timestamp") -> datetime | None:
    """Accept a datetime (naive means UTC) or RFC 3339 text; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        return parse_timestamp(value, option)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
