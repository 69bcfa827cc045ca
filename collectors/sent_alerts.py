"""The store's record of findings already delivered to Sentry (the ``sent_alerts`` table).

A finding is recorded only after Sentry accepted the event that carried it, so a rerun sends
exactly what was not delivered before (README, "Alerts in Sentry").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import duckdb


class SentAlert(NamedTuple):
    """One delivered finding and the Sentry event that carried it."""

    fingerprint: str
    detector: str
    entity: str
    field: str
    sentry_event_id: str


def already_sent(con: duckdb.DuckDBPyConnection, fingerprints: Iterable[str]) -> set[str]:
    """The fingerprints among ``fingerprints`` that an earlier run delivered."""
    wanted = list(fingerprints)
    if not wanted:
        return set()
    rows = con.execute(
        "SELECT fingerprint FROM sent_alerts WHERE fingerprint IN (SELECT unnest(?::VARCHAR[]))",
        [wanted],
    ).fetchall()
    return {row[0] for row in rows}


def record_sent(con: duckdb.DuckDBPyConnection, sent: Sequence[SentAlert]) -> None:
    """Remember delivered findings; one already recorded keeps its first record."""
    if not sent:
        return
    columns = [list(column) for column in zip(*sent, strict=True)]
    con.execute(
        "INSERT OR IGNORE INTO sent_alerts "
        "(fingerprint, detector, entity, field, sentry_event_id, sent_at) "
        "SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
        "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), current_timestamp",
        columns,
    )
