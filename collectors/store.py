"""The DuckDB store: its schema, its migrations, and opening it safely.

DuckDB lets one process hold a database file; any other process, reader or writer, gets a
lock error. `open_store` waits (bounded) for the holder to finish instead of failing, and
says that it is waiting.

Every connection the project opens goes through `connect`: a file that is not a DuckDB
database is refused by its first bytes before DuckDB sees it (given a SQLite file, DuckDB
would fetch its SQLite extension from the network to read it), and DuckDB never installs or
loads an extension by itself.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from audit.errors import AuditError, first_line
from collectors.stores.location import ChdbLocation, ServerLocation, parse_location

DEFAULT_DB = "audit.duckdb"
LOCK_WAIT_S = 60.0
# No extension is ever installed (a download) or loaded behind our back.
CONNECTION_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
# What a connection's queries may hold in memory before DuckDB spills to `<store>.tmp/`
# (DuckDB's own default is 80 % of RAM). The sort behind the detectors holds about 180 bytes
# an event: a check of 100M events took 19.9 GB without a limit, 4.1 GB with a 4 GB one, and
# was faster (bench/detect.py, README "Speed"). Every connection, reader or writer: `audit
# alert` writes the store and runs the detectors. AUDIT_MEMORY_LIMIT overrides it ("2GB",
# "30%", any value DuckDB's `memory_limit` takes).
MEMORY_LIMIT = "20%"
_DUCKDB_MAGIC = (8, b"DUCK")  # a DuckDB file: 8 bytes of checksum, then "DUCK"
_OTHER_MAGIC = (  # what a wrong --db usually is, to say so by name
    (b"SQLite format 3\x00", "a SQLite database"),
    (b"PAR1", "a Parquet file"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x1f\x8b", "a gzip file"),
)

# A write a compare-and-swap guard refused (audit/guard.py records it with attrs.rejected =
# true): it never changed the data. Tested once per event, when it is stored; migration 5
# backfills with it, so changing it edits a released step.
REFUSED = "attrs->>'rejected' = 'true'"

# Each step takes a database from version n-1 to n. Never edit a released step: add one.
MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
        CREATE TABLE IF NOT EXISTS events (
            seq          BIGINT NOT NULL,      -- ingest order, the last tie-breaker of commit order
            event_id     VARCHAR NOT NULL,     -- de-duplication key
            ts           TIMESTAMPTZ NOT NULL,
            entity       VARCHAR NOT NULL,
            entity_type  VARCHAR,
            field        VARCHAR NOT NULL,
            change       VARCHAR NOT NULL,     -- changed | added | removed
            old          JSON,                 -- canonical JSON (sorted keys); NULL = absent
            new          JSON,
            writer       VARCHAR NOT NULL,
            actor        VARCHAR,
            write_id     VARCHAR,              -- NULL: the event is a write of its own
            base_version BIGINT,
            version      BIGINT,
            source_ts    TIMESTAMPTZ,
            priority     INTEGER,
            trace_id     VARCHAR,
            span_id      VARCHAR,
            attrs        JSON,
            source       VARCHAR,              -- file (or '-') the line came from
            line         BIGINT                -- its line number there
        );
        CREATE TABLE IF NOT EXISTS rejected_events (
            source      VARCHAR,
            line        BIGINT,
            raw         VARCHAR,
            reason      VARCHAR NOT NULL,
            rejected_at TIMESTAMPTZ DEFAULT current_timestamp
        );
        CREATE TABLE IF NOT EXISTS ingested_files (
            path        VARCHAR PRIMARY KEY,
            size        BIGINT,    -- bytes consumed so far (up to the last complete line)
            lines       BIGINT,    -- lines consumed so far
            head_md5    VARCHAR,   -- md5 of the first 64 KiB consumed: a rewritten file differs
            tail_md5    VARCHAR,   -- md5 of the 4 KiB before `size`: catches truncate-and-regrow
            ingested_at TIMESTAMPTZ
        );
        """,
    ),
    (
        2,
        """
        -- Findings already sent to Sentry, so a rerun sends only what is new.
        CREATE TABLE IF NOT EXISTS sent_alerts (
            fingerprint VARCHAR PRIMARY KEY,
            detector    VARCHAR,
            entity      VARCHAR,
            field       VARCHAR,
            sentry_event_id VARCHAR,
            sent_at     TIMESTAMPTZ DEFAULT current_timestamp
        );
        """,
    ),
    (
        3,
        """
        -- The writes that happened. A compare-and-swap guard records the writes it refused
        -- (attrs.rejected = true) so that nothing is lost, but they never changed the data:
        -- detectors, timelines and ownership read this view, not the table.
        CREATE OR REPLACE VIEW applied_events AS
        SELECT * FROM events WHERE coalesce(attrs->>'rejected' <> 'true', true);
        """,
    ),
    (
        4,
        """
        -- Where in a rejected line the problem is (its byte), when known: kept beside the
        -- reason so that reasons stay few and countable.
        ALTER TABLE rejected_events ADD COLUMN IF NOT EXISTS at_byte BIGINT;
        """,
    ),
    (
        5,
        f"""
        -- The refused writes by seq, noted as they are stored (collectors/ingest.py), so that
        -- applied_events leaves them out without parsing every event's attrs each time it
        -- is read: a check reads it several times, and with attrs on every event (what OTLP
        -- brings) that parsing made a check of 10M events 6.5 s instead of 5.1 s.
        CREATE TABLE IF NOT EXISTS refused_events (seq BIGINT NOT NULL);
        INSERT INTO refused_events SELECT seq FROM events WHERE {REFUSED};
        CREATE OR REPLACE VIEW applied_events AS
        SELECT * FROM events ANTI JOIN refused_events USING (seq);
        """,
    ),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]

_LOCK_RE = re.compile(r"Could not set lock|Conflicting lock", re.IGNORECASE)


def resolve_db(db: str | os.PathLike | None) -> Path | ChdbLocation | ServerLocation:
    """--db, else $AUDIT_DB, else ./audit.duckdb: a DuckDB file's path, or the ClickHouse
    store a URL names (docs/contract.md §8; printed without its password)."""
    return parse_location(db or os.environ.get("AUDIT_DB") or DEFAULT_DB)


def foreign_file(path: str | os.PathLike) -> str | None:
    """Why the file at ``path`` is not a DuckDB database ("it is a SQLite database, not a
    DuckDB database"); None for a DuckDB file or a file that does not exist yet."""
    path = Path(path)
    if str(path) == ":memory:" or not path.exists():
        return None
    if path.is_dir():
        return "it is a directory"
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    offset, magic = _DUCKDB_MAGIC
    if head[offset : offset + len(magic)] == magic:
        return None
    what = "an empty file" if not head else next(
        (name for prefix, name in _OTHER_MAGIC if head.startswith(prefix)), None
    )
    return f"it is {what}, not a DuckDB database" if what else "it is not a DuckDB database"


def memory_limit() -> str:
    """What a connection may hold: AUDIT_MEMORY_LIMIT, else `MEMORY_LIMIT`."""
    return os.environ.get("AUDIT_MEMORY_LIMIT") or MEMORY_LIMIT


def connect(path: str | os.PathLike, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to ``path``; a file that is not a DuckDB database is refused
    before DuckDB opens it, and extensions are never installed or loaded automatically.
    Its memory is bounded (`memory_limit`)."""
    why = foreign_file(path)
    if why is not None:
        raise AuditError(f"cannot open {path}: {why}")
    limit = memory_limit()
    try:
        return duckdb.connect(str(path), read_only=read_only,
                              config={**CONNECTION_CONFIG, "memory_limit": limit})
    except (duckdb.ParserException, duckdb.InvalidInputException) as exc:
        if limit != MEMORY_LIMIT:  # a memory limit DuckDB does not take
            raise AuditError(f"AUDIT_MEMORY_LIMIT={limit!r}: {first_line(exc)}") from None
        raise


def schema_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The store's schema version; 0 for an empty database; None if it is not ours."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if not tables:
        return 0
    if "meta" not in tables:
        return None
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    return int(row[0][0]) if row else None


def migrate(con: duckdb.DuckDBPyConnection, path: Path | str = "") -> int:
    """Bring the store to SCHEMA_VERSION; returns the version it was at."""
    found = schema_version(con)
    if found is None:
        raise AuditError(f"{path} is a DuckDB database but not a conflict-audit store")
    if found > SCHEMA_VERSION:
        raise AuditError(
            f"{path} has store schema version {found}, newer than this conflict-audit "
            f"understands ({SCHEMA_VERSION}); upgrade conflict-audit"
        )
    for version, ddl in MIGRATIONS:
        if version <= found:
            continue
        con.execute("BEGIN")
        con.execute(ddl)
        con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(version)])
        con.execute("COMMIT")
    return found


def _connect_waiting(
    path: Path, read_only: bool, wait_s: float, notify: Callable[[str], None]
) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + wait_s
    delay, told = 0.05, False
    while True:
        try:
            return connect(path, read_only=read_only)
        except duckdb.IOException as exc:
            if not _LOCK_RE.search(str(exc)):
                raise AuditError(f"cannot open {path}: {first_line(exc)}") from None
            if time.monotonic() >= deadline:
                raise AuditError(
                    f"{path} is locked by another process ({_holder(exc)}) and stayed locked "
                    f"for {wait_s:g} s; try again when it has finished"
                ) from None
            if not told:
                notify(f"{path} is in use by another process ({_holder(exc)}); waiting…")
                told = True
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 1.0)
        except duckdb.Error as exc:
            raise AuditError(f"cannot open {path}: {first_line(exc)}") from None


def open_store(
    db: str | os.PathLike | None = None,
    *,
    read_only: bool = False,
    create: bool = True,
    wait_s: float = LOCK_WAIT_S,
    notify: Callable[[str], None] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open (creating and migrating when writable) the store at ``db``.

    A ClickHouse URL (docs/contract.md §8) gives a `collectors.stores.clickhouse.
    ClickHouseStore`, which answers ``execute`` with DuckDB SQL as this connection does.
    Readers get a read-only connection; a reader that finds an older schema has it migrated
    first. A reader of a store that does not exist (or a writer with ``create=False``) gets a
    clear error, not an empty database.
    """
    path = resolve_db(db)
    notify = notify or (lambda msg: print(msg, file=sys.stderr))
    if not isinstance(path, Path):  # a ClickHouse store (collectors/stores/)
        from collectors.stores import open_clickhouse

        return open_clickhouse(path, read_only=read_only, create=create, wait_s=wait_s,
                               notify=notify)
    if (read_only or not create) and not path.exists():
        raise AuditError(f"no store at {path}; run `audit ingest` first (or pass --db)")
    if str(path) != ":memory:" and not path.parent.exists():
        raise AuditError(f"directory {path.parent} does not exist")
    con = _connect_waiting(path, read_only, wait_s, notify)
    try:
        version = schema_version(con)
        if read_only and version is not None and version < SCHEMA_VERSION:
            # A reader cannot migrate through its own connection: briefly become the writer.
            con.close()
            migrate_con = _connect_waiting(path, False, wait_s, notify)
            try:
                migrate(migrate_con, path)
            finally:
                migrate_con.close()
            con = _connect_waiting(path, True, wait_s, notify)
        elif version != SCHEMA_VERSION:
            migrate(con, path)  # migrates, or refuses a foreign or newer store by name
    except BaseException:
        con.close()
        raise
    return con


def _holder(exc: Exception) -> str:
    m = re.search(r"\(PID (\d+)\)", str(exc))
    return f"PID {m.group(1)}" if m else "another process"
