"""The capture's objects in a PostgreSQL database: connecting, the SQL files beside this
module, the schema version, and attaching the trigger to a table under an installation."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from importlib import resources

import psycopg
from psycopg import sql

from audit.diff import diff
from audit.errors import AuditError, first_line
from collectors.pg.transitions import Installation

TRIGGER = "conflict_audit_capture"
# What these modules create and read (sql/schema.sql). Version 1 diffed in the trigger;
# collectors/pg/upgrade.py moves a database from it.
SCHEMA_VERSION = 2


def connect(dsn: str) -> psycopg.Connection:
    """A connection whose ``with`` block is one transaction, or a one-line error."""
    try:
        return psycopg.connect(dsn)
    except psycopg.Error as exc:
        raise AuditError(f"cannot connect to PostgreSQL: {first_line(exc)}") from None


def sql_file(name: str) -> str:
    return resources.files("collectors.pg").joinpath("sql", name).read_text(encoding="utf-8")


def create_objects(cur: psycopg.Cursor) -> None:
    """The current capture objects (sql/schema.sql, sql/capture.sql); safe to run again."""
    for part in ("schema.sql", "capture.sql"):
        cur.execute(sql_file(part))


def schema_version(cur: psycopg.Cursor) -> int | None:
    """The version of the capture objects in this database; None: nothing installed. A
    version newer than this code knows is refused: its tables may mean something else."""
    if cur.execute("SELECT to_regclass('conflict_audit.meta') IS NULL").fetchone()[0]:
        return None
    row = cur.execute(
        "SELECT value FROM conflict_audit.meta WHERE key = 'schema_version'"
    ).fetchone()
    version = int(row[0]) if row else 1
    if version > SCHEMA_VERSION:
        raise AuditError(
            f"this database's capture has schema version {version}, newer than this "
            f"conflict-audit knows ({SCHEMA_VERSION}): upgrade conflict-audit"
        )
    return version


def resolve_table(cur: psycopg.Cursor, table: str) -> tuple[int, str, str]:
    """(oid, schema, name) of an ordinary or partitioned table, or a clear error."""
    row = cur.execute(
        "SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
        [table],
    ).fetchone()
    if row is None:
        raise AuditError(f"no table {table!r} in the database")
    oid, schema, name, kind = row
    if kind not in ("r", "p"):
        raise AuditError(f"{table!r} is not a table (a trigger captures the rows of a table)")
    if schema == "conflict_audit":
        raise AuditError("the capture's own tables are not captured")
    return oid, schema, name


def columns(cur: psycopg.Cursor, oid: int) -> dict[str, str]:
    """Column name -> type name, in the table's order."""
    rows = cur.execute(
        "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
        "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        [oid],
    ).fetchall()
    return dict(rows)


def attach(
    cur: psycopg.Cursor,
    oid: int,
    schema: str,
    name: str,
    *,
    entity_type: str,
    key_columns: Iterable[str],
    version_column: str | None,
    exclude: Iterable[str],
    list_keys: Mapping[str, str | None],
) -> Installation:
    """Store the settings as a new installation and point the table's trigger at it (the
    trigger is created, or replaced in place)."""
    values = {
        "table_name": f"{schema}.{name}",
        "entity_prefix": name if schema == "public" else f"{schema}.{name}",
        "entity_type": entity_type,
        "key_columns": list(key_columns),
        "version_column": version_column,
        "exclude": list(dict.fromkeys(exclude)),
        "list_keys": json.dumps(list(list_keys.items())),
    }
    (installation_id,) = cur.execute(
        "INSERT INTO conflict_audit.installations (table_name, entity_prefix, entity_type, "
        "key_columns, version_column, exclude, list_keys) VALUES (%(table_name)s, "
        "%(entity_prefix)s, %(entity_type)s, %(key_columns)s, %(version_column)s, "
        "%(exclude)s, %(list_keys)s) RETURNING id",
        values,
    ).fetchone()
    installation = Installation(
        id=installation_id, table=values["table_name"], entity_prefix=values["entity_prefix"],
        entity_type=entity_type, key_columns=tuple(values["key_columns"]),
        version_column=version_column, exclude=tuple(values["exclude"]),
        list_keys=tuple(list_keys.items()),
    )
    arguments = [str(installation_id)]
    # Columns the patterns leave nothing of are left out of the stored rows altogether.
    left_out = [c for c in columns(cur, oid)
                if c not in installation.identity
                and not diff({c: None}, {}, rules=installation.rules)]
    if left_out:
        arguments.append(_array(left_out))
    cur.execute(
        sql.SQL(
            "CREATE OR REPLACE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {} "
            "FOR EACH ROW EXECUTE FUNCTION conflict_audit.capture({})"
        ).format(
            sql.Identifier(TRIGGER),
            sql.Identifier(schema, name),
            sql.SQL(", ").join(sql.Literal(a) for a in arguments),
        )
    )
    return installation


def _array(values: Iterable[str]) -> str:
    """A PostgreSQL text[] literal, as the trigger casts its argument."""
    return "{" + ",".join(
        '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values
    ) + "}"
