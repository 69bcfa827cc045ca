"""Tell the PostgreSQL capture trigger who is writing (docs/contract.md §6).

The trigger that `audit pg install` puts on a table reads the writer from settings of the
writing transaction, as ``SET LOCAL audit.writer = 'workflow'`` sets them. These functions
set them from the current ``audit.writer(...)`` scope, so code that already names its
writer for the instrumentation names it for the database too::

    from audit import pg

    with audit.writer("workflow", actor="engine-1"), conn.transaction():
        pg.set_local(conn, base_version=read_version)      # psycopg, psycopg2, SQLAlchemy
        conn.execute("UPDATE blocks SET ... WHERE id = %s", [block_id])

    pg.instrument_sqlalchemy(engine)   # or: every transaction the engine begins, by itself

No driver is imported here: a connection is used through the calls it offers. Like the
rest of the instrumentation this fails open: a failure is counted in ``audit.stats()``
(sink ``postgres``) and the write goes on without the settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from audit import health
from audit.timestamps import as_timestamp
from audit.writer import current_writer

# set_config(..., true) is SET LOCAL with bound values (SET itself takes no parameters).
# Every call sets all four, so a second call in one transaction leaves nothing behind; an
# empty value is "not set" to the trigger.
_SQL = (
    "SELECT set_config('audit.writer', %s, true), set_config('audit.actor', %s, true), "
    "set_config('audit.source_ts', %s, true), set_config('audit.base_version', %s, true)"
)
_SINK = "postgres"


def settings(*, base_version: int | None = None, source_ts: Any = None) -> dict[str, str]:
    """The values `set_local` sets: the current writer scope's name and actor (empty outside
    any scope: the trigger then falls back to application_name, then the role), and
    ``base_version`` / ``source_ts`` (a datetime, epoch seconds or RFC 3339 text) if given."""
    scope = current_writer()
    if source_ts is not None:
        source_ts = as_timestamp(source_ts)  # the instrumentation's own rule
    if base_version is not None and (
        isinstance(base_version, bool) or not isinstance(base_version, int)
    ):
        raise TypeError(f"base_version must be an integer, got {base_version!r}")
    return {
        "audit.writer": scope.name if scope else "",
        "audit.actor": (scope.actor or "") if scope else "",
        "audit.source_ts": source_ts or "",
        "audit.base_version": "" if base_version is None else str(base_version),
    }


def set_local(conn: Any, *, base_version: int | None = None, source_ts: Any = None) -> None:
    """Set the writer settings for the transaction ``conn`` is in (or begins with this).

    ``conn``: a psycopg 3 or psycopg2 connection or cursor, or a SQLAlchemy ``Connection``
    or ``Session``. Call it inside the transaction that writes: the settings end with it.
    """
    try:
        params = tuple(settings(base_version=base_version, source_ts=source_ts).values())
        if _is_sqlalchemy(conn):
            if hasattr(conn, "exec_driver_sql"):
                conn.exec_driver_sql(_SQL, params)
            else:  # an ORM Session: the connection of its current transaction
                conn.connection().exec_driver_sql(_SQL, params)
        elif hasattr(conn, "cursor"):
            cursor = conn.cursor()
            try:
                cursor.execute(_SQL, params)
            finally:
                cursor.close()
        else:
            conn.execute(_SQL, params)
    except Exception as exc:  # the instrumentation never breaks the write it observes
        health.dropped(_SINK, exc, 0)


@contextmanager
def transaction(conn: Any, *, base_version: int | None = None, source_ts: Any = None
                ) -> Iterator[Any]:
    """``with pg.transaction(conn):`` a psycopg 3 transaction with the settings set."""
    with conn.transaction() as tx:
        set_local(conn, base_version=base_version, source_ts=source_ts)
        yield tx


def instrument_sqlalchemy(engine: Any) -> None:
    """Set the writer settings at the start of every transaction ``engine`` begins inside an
    ``audit.writer`` scope (Core connections and ORM sessions alike). A transaction begun
    outside any scope is left alone. Installing twice installs once."""
    from sqlalchemy import event

    if not event.contains(engine, "begin", _on_begin):
        event.listen(engine, "begin", _on_begin)


def _on_begin(conn: Any) -> None:
    if current_writer() is None:
        return
    # Straight to the driver: SQLAlchemy is in the middle of beginning this transaction, and
    # the driver's own (implicit) transaction is the one the settings must live in.
    try:
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute(_SQL, tuple(settings().values()))
        finally:
            cursor.close()
    except Exception as exc:
        health.dropped(_SINK, exc, 0)


def _is_sqlalchemy(conn: Any) -> bool:
    return type(conn).__module__.startswith("sqlalchemy.")
