"""`audit pg pull`: captured transitions into the store, each exactly once.

The rows come out of PostgreSQL as event lines (sql/pull.sql) and go in through
`collectors.ingest.load_lines`, so they get the validation and the event-id idempotence of
`audit ingest`. How the pull keeps up with transactions that commit out of id order is
told in sql/pull.sql; the store remembers the last pull's snapshot xmin per capture source
in its `meta` table.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
from psycopg import IsolationLevel

from audit.errors import AuditError
from collectors.ingest import IngestSummary, load_lines
from collectors.pg.capture import connect, sql_file

BATCH_ROWS = 50_000
_PULL = sql_file("pull.sql")


def _mark_key(source: str) -> str:
    return f"pg_pull:{source}"


def _source_id(cur) -> str:
    exists = cur.execute("SELECT to_regclass('conflict_audit.meta') IS NOT NULL").fetchone()[0]
    if not exists:
        raise AuditError("nothing is captured in this database: run `audit pg install` first")
    (source,) = cur.execute(
        "SELECT value FROM conflict_audit.meta WHERE key = 'source_id'"
    ).fetchone()
    return source


def pull(
    dsn: str,
    con: duckdb.DuckDBPyConnection,
    *,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[IngestSummary], None] | None = None,
) -> IngestSummary:
    """Copy what the capture holds and the store lacks; ``progress`` gets the running total
    after each batch. Rows read again (see sql/pull.sql) count as duplicates."""
    total = IngestSummary()
    with connect(dsn) as conn:
        conn.read_only = True
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        with conn.cursor() as cur:
            source = _source_id(cur)
            # REPEATABLE READ: the transaction's first statement fixed the snapshot, and
            # pg_current_snapshot() is that one, the snapshot the rows are read in.
            (xmin,) = cur.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text"
                                  ).fetchone()
            mark = con.execute("SELECT value FROM meta WHERE key = ?", [_mark_key(source)]
                               ).fetchall()
            since = mark[0][0] if mark else None
        # A server-side cursor: the rows stream in batches instead of all at once.
        with conn.cursor(name="conflict_audit_pull") as rows:
            rows.itersize = batch_rows
            rows.execute(_PULL, {"source": source, "since": since})
            while batch := rows.fetchmany(batch_rows):
                total.add(load_lines(con, [line for (line,) in batch], f"pg:{source}"))
                if progress:
                    progress(total)
    # After the rows are stored: a pull cut short before this reads them again next time,
    # and the store skips them.
    con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [_mark_key(source), xmin])
    return total
