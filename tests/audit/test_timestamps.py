"""Timestamps: what the package writes, and what it accepts from callers and users."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

import audit
from audit import timestamps
from audit.event import RFC3339_PATTERN


def test_from_ns_is_utc_to_the_microsecond_with_z():
    ns = 1_767_261_600_123_456_789  # 2026-01-01T10:00:00.123456789Z
    assert timestamps.from_ns(ns) == "2026-01-01T10:00:00.123456Z"
    assert timestamps.from_ns(ns + 1_000_000_000) == "2026-01-01T10:00:01.123456Z"  # next second
    assert timestamps.from_ns(ns) == "2026-01-01T10:00:00.123456Z"  # and back
    assert timestamps.from_ns(-1_000) == "1969-12-31T23:59:59.999999Z"


def test_the_clock_of_a_write_is_rfc3339_and_parses_back(fresh_audit):
    class Sink:
        def __init__(self):
            self.events = []

        def __call__(self, event):
            self.events.append(event)

    sink = Sink()
    audit.configure(sink=sink, otel=False)
    before = datetime.now(UTC)
    audit.record("e", {"a": 1}, {"a": 2})
    (event,) = sink.events
    assert re.fullmatch(RFC3339_PATTERN, event["ts"]) and event["ts"].endswith("Z")
    assert abs(timestamps.parse(event["ts"]) - before) < timedelta(seconds=5)


def test_parse_accepts_rfc3339_forms_and_keeps_microseconds():
    expected = datetime(2025, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)
    assert timestamps.parse("2025-01-31T12:00:00.123456789Z") == expected
    assert timestamps.parse(" 2025-01-31t12:00:00.123456z ") == expected
    assert timestamps.parse("2025-01-31 14:00:00.123456+02:00") == expected
    assert timestamps.parse("2025-01-31T14:00:00+02:00").tzinfo == timezone(timedelta(hours=2))


@pytest.mark.parametrize("text", ["2025-01-31", "2025-01-31T12:00:00", "yesterday",
                                  "2025-02-30T12:00:00Z"])
def test_parse_refuses_what_is_no_timestamp_with_an_offset_naming_it(text):
    with pytest.raises(ValueError, match=re.escape(repr(text.strip()))):
        timestamps.parse(text)


def test_from_datetime_is_utc_with_z_and_naive_means_utc():
    assert timestamps.from_datetime(datetime(2025, 1, 31, 12)) == "2025-01-31T12:00:00Z"
    east = datetime(2025, 1, 31, 14, 0, 0, 500, tzinfo=timezone(timedelta(hours=2)))
    assert timestamps.from_datetime(east) == "2025-01-31T12:00:00.000500Z"


@pytest.mark.parametrize("moment", [
    datetime(2025, 1, 31, 12, tzinfo=UTC),                # no fraction: none written
    datetime(2025, 1, 31, 12, 0, 0, 500, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # before the epoch
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(999, 5, 6, 7, 8, 9, 10, tzinfo=UTC),          # a year of three digits
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
])
def test_from_micros_writes_what_from_datetime_writes(moment):
    micros = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert timestamps.from_micros(micros) == timestamps.from_datetime(moment)
    assert timestamps.to_micros(moment) == micros


def test_from_micros_refuses_moments_python_cannot_hold():
    with pytest.raises(OverflowError):
        timestamps.from_micros(253_402_300_800 * 1_000_000)  # year 10000
