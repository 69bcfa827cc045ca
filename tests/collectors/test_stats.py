"""What `audit stats` reports: counts, and an order that does not change between runs."""

from __future__ import annotations

import json

from collectors.ingest import load_lines
from collectors.stats import store_stats
from collectors.store import open_store


def test_writers_with_equal_counts_are_listed_by_name():
    lines = [
        json.dumps(
            {"ts": "2026-01-01T10:00:00Z", "entity": "e", "field": f"f{i}", "old": 1, "new": 2}
            | {"writer": writer, "entity_type": kind}
        )
        for i, (writer, kind) in enumerate(
            [("zeta", "b"), ("alpha", "a"), ("mid", "b"), ("zeta", "a"), ("alpha", "c")]
        )
    ]
    con = open_store(":memory:")
    try:
        load_lines(con, lines, source="s")
        stats = store_stats(con)
    finally:
        con.close()
    assert [tuple(r) for r in stats["by_writer"]] == [("alpha", 2), ("zeta", 2), ("mid", 1)]
    assert [tuple(r) for r in stats["by_entity_type"]] == [("a", 2), ("b", 2), ("c", 1)]


def test_times_python_cannot_hold_are_shown_as_the_store_has_them():
    """A row of year 0 (1 BC), which DuckDB stores and hands back as text, or of the edges
    of what Python holds, must not fail the summary of the whole store."""
    con = open_store(":memory:")
    try:
        for seq, ts in enumerate(["0000-01-01 00:00:00+00", "0001-01-01 00:00:00+00",
                                  "9999-12-31 23:59:59+00"]):
            con.execute(
                "INSERT INTO events (seq, event_id, ts, entity, field, change, new, writer) "
                "VALUES (?, ?, ?::TIMESTAMPTZ, 'e', 'f', 'changed', '1', 'w')",
                [seq, f"e{seq}", ts],
            )
        stats = store_stats(con)
    finally:
        con.close()
    assert stats["events"] == 3
    assert stats["first_ts"] == "0001-01-01 (BC) 00:00:00+00"
    assert stats["last_ts"].startswith("9999-12-31T")
