"""What is in the store: a summary for `audit stats` and for people poking at a store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb


def _moment(value: datetime | str | None) -> str | None:
    """A stored time as text. DuckDB hands back a time Python cannot hold (before year 1,
    after 9999, ±infinity) as its own text: shown as it is rather than failing the summary."""
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


def store_stats(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    def rows(sql: str) -> list[tuple]:
        return con.execute(sql).fetchall()

    total, entities, first, last = rows(
        "SELECT count(*), count(DISTINCT entity), min(ts), max(ts) FROM events"
    )[0]
    return {
        "events": total,
        "entities": entities,
        "first_ts": _moment(first),
        "last_ts": _moment(last),
        "by_writer": rows("SELECT writer, count(*) n FROM events GROUP BY ALL ORDER BY n DESC, 1"),
        "by_entity_type": rows(
            "SELECT coalesce(entity_type, '(none)'), count(*) n FROM events "
            "GROUP BY ALL ORDER BY n DESC, 1"
        ),
        "rejected": rows("SELECT count(*) FROM rejected_events")[0][0],
        "rejects_by_reason": rows(
            "SELECT reason, count(*) n FROM rejected_events "
            "GROUP BY ALL ORDER BY n DESC, 1 LIMIT 20"
        ),
        "files": rows("SELECT count(*) FROM ingested_files")[0][0],
    }
