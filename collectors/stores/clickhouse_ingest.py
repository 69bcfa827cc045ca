"""`audit ingest` into a ClickHouse store, with the DuckDB ingest's acceptance rules.

There is one set of rules: collectors/ingest.py validates and canonicalises lines in SQL
run by DuckDB. Here it runs unchanged, one file at a time, into an empty in-memory DuckDB
store that knows what the ClickHouse store has already read of each file; the rows it
accepted, the lines it rejected and the new file positions are then shipped to ClickHouse as
Arrow. Duplicates of events already in ClickHouse (by `event_id`) are dropped there, so a
re-ingest adds nothing, as with `audit ingest` on DuckDB.

ClickHouse has no transactions: a file's events are stored first, then its rejected lines,
then its position. An ingest stopped in between reads the file again next time; its events
are then duplicates, and its rejected lines past the stored position are replaced.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa

from collectors import sources
from collectors.ingest import IngestSummary, files_to_read
from collectors.ingest import ingest as ingest_into_duckdb
from collectors.store import open_store
from collectors.stores.clickhouse import ClickHouseStore
from collectors.stores.dialect import quote

_STAGE = "audit_ingest_stage"


def ingest(
    store: ClickHouseStore,
    paths: list[str],
    *,
    progress: bool = False,
    notify: Callable[[str], None] | None = None,
    **options: Any,
) -> IngestSummary:
    """Ingest files, folders and '-' (stdin) into ``store``; see collectors.ingest.ingest."""
    if store.read_only:
        raise AssertionError("ingest needs a writable store")
    notify = notify or (lambda msg: print(msg, file=sys.stderr))
    total = IngestSummary()
    for path in files_to_read(paths, total, notify):
        staging = open_store(":memory:")
        try:
            known = _seed_positions(store, staging, path)
            if path != sources.STDIN and sources.plan_resume(staging, path).restarted:
                store.command(f"DELETE FROM rejected_events WHERE source = "
                              f"{quote(sources.source_key(path))}")
                known = 0
            summary = ingest_into_duckdb(staging, [path], progress=progress, notify=notify,
                                         **options)
            _ship(store, staging, summary, sources.source_key(path), known)
        finally:
            staging.close()
        total.add(summary)
    return total


def _seed_positions(store: ClickHouseStore, staging: duckdb.DuckDBPyConnection,
                    path: str) -> int:
    """Copy what ClickHouse remembers of ``path`` into the staging store; returns the number
    of lines read of it so far (0 for a new file)."""
    if path == sources.STDIN:
        return 0
    rows = store.query_arrow(
        "SELECT path, size, lines, head_md5, tail_md5, ingested_at FROM ingested_files "
        f"WHERE path = {quote(sources.source_key(path))} ORDER BY ingested_at DESC LIMIT 1")
    if not rows.num_rows:
        return 0
    staging.register("audit_known", rows)
    staging.execute("INSERT INTO ingested_files SELECT * FROM audit_known")
    staging.unregister("audit_known")
    return rows.column("lines")[0].as_py() or 0


def _ship(store: ClickHouseStore, staging: duckdb.DuckDBPyConnection,
          summary: IngestSummary, key: str, known_lines: int) -> None:
    events = staging.sql("SELECT * FROM events ORDER BY seq").to_arrow_table()
    if events.num_rows:
        duplicates = _store_events(store, events)
        summary.ingested -= duplicates
        summary.fast -= min(duplicates, summary.fast)
        summary.duplicates += duplicates
    rejected = staging.sql(
        "SELECT * EXCLUDE (rejected_at) FROM rejected_events ORDER BY line").to_arrow_table()
    if rejected.num_rows:
        store.command(f"DELETE FROM rejected_events WHERE source = {quote(key)} "
                      f"AND line > {int(known_lines)}")
        store.insert_arrow("rejected_events", rejected)
    files = staging.sql("SELECT * FROM ingested_files").to_arrow_table()
    if files.num_rows:
        store.command(f"DELETE FROM ingested_files WHERE path = {quote(key)}")
        store.insert_arrow("ingested_files", files)


def _store_events(store: ClickHouseStore, events: pa.Table) -> int:
    """Append ``events`` after the store's last seq, leaving out those whose event_id is
    stored already; returns how many were left out."""
    (base,) = store.query_arrow("SELECT max(seq) AS m FROM events").column(0).to_pylist()
    store.command(f"DROP TABLE IF EXISTS {_STAGE}")
    store.command(f"CREATE TABLE {_STAGE} AS events ENGINE = Memory")
    try:
        store.insert_arrow(_STAGE, events)
        (duplicates,) = store.query_arrow(
            f"SELECT count() AS n FROM {_STAGE} WHERE event_id IN "
            f"(SELECT event_id FROM events WHERE event_id IN (SELECT event_id FROM {_STAGE}))"
        ).column(0).to_pylist()
        columns = ", ".join(f"`{c}`" for c in events.column_names if c != "seq")
        store.command(
            f"INSERT INTO events (seq, {columns}) SELECT seq + {int(base or 0)}, {columns} "
            f"FROM {_STAGE} WHERE event_id NOT IN (SELECT event_id FROM events "
            f"WHERE event_id IN (SELECT event_id FROM {_STAGE}))")
    finally:
        store.command(f"DROP TABLE IF EXISTS {_STAGE}")
    return int(duplicates)
