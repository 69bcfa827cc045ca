"""`audit pg pull`: captured row changes into the store as transitions, each exactly once.

The row changes come out of PostgreSQL (sql/pull.sql), become events with the
instrumentation's diff (collectors/pg/transitions.py), and go in through
`collectors.ingest.load_lines`, so they get the validation and the event-id idempotence of
`audit ingest`.

Capture ids are taken before commit, so they do not commit in order: a transaction holding
id 10 can commit after one holding id 11 was pulled. The pull therefore tracks
transactions, not ids. It runs in one REPEATABLE READ snapshot and remembers that
snapshot's xmin in the store's `meta` table, per capture source: every transaction older
than it had finished, so its rows were read (or it rolled back). The next pull reads again
every row of a transaction from xmin on; the events it had already stored are duplicates
the store skips by event id, which depends only on the row change (transitions.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import duckdb
import psycopg
from psycopg import IsolationLevel

from audit import exact_json
from audit.errors import AuditError
from collectors.ingest import IngestSummary, load_lines
from collectors.pg.database import connect, schema_version, sql_file
from collectors.pg.transitions import Installation, RowChange, transitions

BATCH_ROWS = 10_000
_PULL = sql_file("pull.sql")
_PULL_VERSION_1 = sql_file("pull_v1.sql")


def pull(
    dsn: str,
    con: duckdb.DuckDBPyConnection,
    *,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[IngestSummary], None] | None = None,
) -> IngestSummary:
    """Copy what the capture holds and the store lacks; ``progress`` gets the running total
    after each batch. Rows read again count as duplicates."""
    total = IngestSummary()
    with connect(dsn) as conn:
        conn.read_only = True
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        with conn.cursor() as cur:
            version = schema_version(cur)
            if version is None:
                raise AuditError(
                    "nothing is captured in this database: run `audit pg install` first")
            (source,) = cur.execute(
                "SELECT value FROM conflict_audit.meta WHERE key = 'source_id'").fetchone()
            # REPEATABLE READ: the transaction's first statement fixed the snapshot, and
            # pg_current_snapshot() is that one, the snapshot the rows are read in.
            (xmin,) = cur.execute(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text").fetchone()
            mark = con.execute("SELECT value FROM meta WHERE key = ?", [_mark_key(source)]
                               ).fetchall()
            since = mark[0][0] if mark else None
            has_version_1_rows = cur.execute(
                "SELECT to_regclass('conflict_audit.transitions') IS NOT NULL").fetchone()[0]
            setups = _installations(cur) if version >= 2 else {}
        batches: list[Iterator[list[bytes]]] = []
        if has_version_1_rows:
            batches.append(_version_1_lines(conn, source, since, batch_rows))
        if version >= 2:
            batches.append(_lines(conn, source, since, setups, batch_rows))
        for lines in itertools.chain.from_iterable(batches):
            total.add(load_lines(con, lines, f"pg:{source}"))
            if progress:
                progress(total)
    # After the rows are stored: a pull cut short before this reads them again next time,
    # and the store skips them.
    con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [_mark_key(source), xmin])
    return total


def _mark_key(source: str) -> str:
    return f"pg_pull:{source}"


def _installations(cur: psycopg.Cursor) -> dict[int, Installation]:
    rows = cur.execute(
        "SELECT id, table_name, entity_prefix, entity_type, key_columns, version_column, "
        "exclude, list_keys FROM conflict_audit.installations").fetchall()
    return {
        row[0]: Installation(row[0], row[1], row[2], row[3], tuple(row[4]), row[5],
                             tuple(row[6]), tuple((p, k) for p, k in row[7]))
        for row in rows
    }


def _lines(conn: psycopg.Connection, source: str, since: str | None,
           setups: dict[int, Installation], batch_rows: int) -> Iterator[list[bytes]]:
    """The events of the row changes, a batch of row changes at a time."""
    # A server-side cursor: the rows stream in batches instead of all at once.
    with conn.cursor(name="conflict_audit_pull") as rows:
        rows.itersize = batch_rows
        rows.execute(_PULL, {"since": since})
        while batch := rows.fetchmany(batch_rows):
            lines = []
            for row in batch:
                change = RowChange(*row)
                setup = setups.get(change.installation)
                if setup is None:
                    raise AuditError(
                        f"captured row change {change.id} names installation "
                        f"{change.installation}, which conflict_audit.installations lacks")
                # jsonb numbers have no limit: integers beyond 64 bits are written as their digits
                lines.extend(exact_json.dumps(e) for e in transitions(change, setup, source))
            yield lines


def _version_1_lines(conn: psycopg.Connection, source: str, since: str | None,
                     batch_rows: int) -> Iterator[list[bytes]]:
    """Transitions captured by schema version 1 (sql/pull_v1.sql), already event lines."""
    with conn.cursor(name="conflict_audit_pull_v1") as rows:
        rows.itersize = batch_rows
        rows.execute(_PULL_VERSION_1, {"source": source, "since": since})
        while batch := rows.fetchmany(batch_rows):
            yield [line.encode() for (line,) in batch]
