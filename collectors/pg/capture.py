"""Install and remove the capture trigger on a PostgreSQL table (docs/contract.md §6).

The SQL lives in ``sql/`` beside this module (the schema, the trigger); this module checks
the table and the options, stores them as an installation, and runs it all in one
transaction. Installing again stores the settings anew for what is captured from then on
and keeps every captured row. A database captured by an older version is upgraded first
(collectors/pg/upgrade.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import psycopg
from psycopg import sql

from audit.diff import DEFAULT_LIST_KEYS, STAMP_KEY
from audit.errors import AuditError
from collectors.pg import upgrade
from collectors.pg.database import (
    TRIGGER,
    attach,
    columns,
    connect,
    create_objects,
    resolve_table,
    schema_version,
)
from collectors.pg.transitions import Installation

_INTEGER_TYPES = ("smallint", "integer", "bigint")
_JSON_TYPES = ("json", "jsonb")
# Serialises installs: CREATE ... IF NOT EXISTS is not safe against a concurrent twin.
_INSTALL_LOCK = 0x636F6E666C696374  # "conflict"


def create_schema(cur: psycopg.Cursor) -> None:
    """The capture objects, current (sql/schema.sql, sql/capture.sql); a database captured
    by schema version 1 is upgraded, one newer than this code is refused."""
    if schema_version(cur) == 1:
        upgrade.from_version_1(cur)
        return
    create_objects(cur)


def install(
    dsn: str,
    table: str,
    *,
    key: Iterable[str] | None = None,
    version_column: str | None = None,
    entity_type: str | None = None,
    exclude: Iterable[str] = (),
    list_keys: Mapping[str, str | None] | None = None,
) -> Installation:
    """Create the capture objects (once) and the trigger on ``table`` (again: replaced).

    ``key``: the columns naming the entity (default: the primary key); ``exclude`` and
    ``list_keys``: docs/diff.md patterns over ``column.path`` fields.
    """
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [_INSTALL_LOCK])
        oid, schema, name = resolve_table(cur, table)
        types = columns(cur, oid)
        keys = list(key) if key else _primary_key(cur, oid)
        if not keys:
            raise AuditError(f"{table!r} has no primary key: name the entity's column with --key")
        for column in keys:
            if column not in types:
                raise AuditError(f"{table!r} has no column {column!r} (--key)")
        if version_column is not None:
            if version_column not in types:
                raise AuditError(f"{table!r} has no column {version_column!r} (--version-column)")
            if types[version_column] not in _INTEGER_TYPES:
                raise AuditError(
                    f"--version-column {version_column!r} is {types[version_column]}; "
                    "versions are integers (smallint, integer or bigint)"
                )
        create_schema(cur)
        # A jsonb column may hold a document stamped by the instrumentation: never diffed.
        stamps = [f"{c}.{STAMP_KEY}" for c, t in types.items() if t in _JSON_TYPES]
        return attach(
            cur, oid, schema, name,
            entity_type=entity_type or name,
            key_columns=keys,
            version_column=version_column,
            exclude=[*exclude, *stamps],
            list_keys=DEFAULT_LIST_KEYS if list_keys is None else list_keys,
        )


def uninstall(dsn: str, table: str) -> bool:
    """Remove the capture trigger from ``table``; the captured rows stay. False when there
    was none."""
    with connect(dsn) as conn, conn.cursor() as cur:
        oid, schema, name = resolve_table(cur, table)
        (present,) = cur.execute(
            "SELECT count(*) > 0 FROM pg_trigger WHERE tgrelid = %s AND tgname = %s",
            [oid, TRIGGER],
        ).fetchone()
        if present:
            cur.execute(
                sql.SQL("DROP TRIGGER {} ON {}").format(
                    sql.Identifier(TRIGGER), sql.Identifier(schema, name)
                )
            )
    return bool(present)


def _primary_key(cur: psycopg.Cursor, oid: int) -> list[str]:
    rows = cur.execute(
        "SELECT a.attname FROM pg_index i "
        "JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = %s AND i.indisprimary ORDER BY k.n",
        [oid],
    ).fetchall()
    return [r[0] for r in rows]
