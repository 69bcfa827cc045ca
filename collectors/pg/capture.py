"""Install and remove the capture trigger on a PostgreSQL table (docs/contract.md §6).

The SQL lives in ``sql/`` beside this module (schema, diff, trigger); this module checks
the table and the options, turns the options into the trigger's arguments, and runs it all
in one transaction. Installing again replaces the trigger's settings and keeps every
captured row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg import sql

from audit.errors import AuditError, first_line

TRIGGER = "conflict_audit_capture"
DEFAULT_LIST_KEYS: Mapping[str, str | None] = {"*": "id"}  # docs/diff.md: keyed lists
STAMP_KEY = "_meta"  # docs/diff.md: a document's stamp is never diffed
_INTEGER_TYPES = ("smallint", "integer", "bigint")
_JSON_TYPES = ("json", "jsonb")
# Serialises installs: CREATE ... IF NOT EXISTS is not safe against a concurrent twin.
_INSTALL_LOCK = 0x636F6E666C696374  # "conflict"


@dataclass(frozen=True)
class Installed:
    """What `install` set up, as the trigger's arguments hold it."""

    table: str
    entity_prefix: str
    entity_type: str
    key_columns: tuple[str, ...]
    version_column: str | None
    exclude: tuple[str, ...]


def sql_file(name: str) -> str:
    return resources.files("collectors.pg").joinpath("sql", name).read_text(encoding="utf-8")


def like_pattern(pattern: str) -> str:
    """A docs/diff.md pattern (``*`` matches any run of characters, nothing else is special)
    as a LIKE pattern with the default escape ``\\``."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def _columns(cur: psycopg.Cursor, oid: int) -> dict[str, str]:
    rows = cur.execute(
        "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
        "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        [oid],
    ).fetchall()
    return dict(rows)


def _resolve_table(cur: psycopg.Cursor, table: str) -> tuple[int, str, str]:
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


def _primary_key(cur: psycopg.Cursor, oid: int) -> list[str]:
    rows = cur.execute(
        "SELECT a.attname FROM pg_index i "
        "JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = %s AND i.indisprimary ORDER BY k.n",
        [oid],
    ).fetchall()
    return [r[0] for r in rows]


def _array(values: Iterable[str | None]) -> str:
    """A PostgreSQL text[] literal (None: NULL), as the trigger casts its arguments."""
    def element(value: str | None) -> str:
        if value is None:
            return "NULL"
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "{" + ",".join(element(v) for v in values) + "}"


def install(
    dsn: str,
    table: str,
    *,
    key: Iterable[str] | None = None,
    version_column: str | None = None,
    entity_type: str | None = None,
    exclude: Iterable[str] = (),
    list_keys: Mapping[str, str | None] | None = None,
) -> Installed:
    """Create the capture objects (once) and the trigger on ``table`` (again: replaced).

    ``key``: the columns naming the entity (default: the primary key); ``exclude`` and
    ``list_keys``: docs/diff.md patterns over ``column.path`` fields.
    """
    list_keys = DEFAULT_LIST_KEYS if list_keys is None else list_keys
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [_INSTALL_LOCK])
        oid, schema, name = _resolve_table(cur, table)
        columns = _columns(cur, oid)
        keys = list(key) if key else _primary_key(cur, oid)
        if not keys:
            raise AuditError(f"{table!r} has no primary key: name the entity's column with --key")
        for column in keys:
            if column not in columns:
                raise AuditError(f"{table!r} has no column {column!r} (--key)")
        if version_column is not None:
            if version_column not in columns:
                raise AuditError(f"{table!r} has no column {version_column!r} (--version-column)")
            if columns[version_column] not in _INTEGER_TYPES:
                raise AuditError(
                    f"--version-column {version_column!r} is {columns[version_column]}; "
                    "versions are integers (smallint, integer or bigint)"
                )
        # A jsonb column may hold a document stamped by the instrumentation: never diffed.
        stamps = [f"{c}.{STAMP_KEY}" for c, t in columns.items() if t in _JSON_TYPES]
        patterns = list(dict.fromkeys([*exclude, *stamps]))
        for part in ("schema.sql", "diff.sql", "capture.sql"):
            cur.execute(sql_file(part))
        installed = Installed(
            table=f"{schema}.{name}",
            entity_prefix=name if schema == "public" else f"{schema}.{name}",
            entity_type=entity_type or name,
            key_columns=tuple(keys),
            version_column=version_column,
            exclude=tuple(exclude),
        )
        arguments = [
            installed.entity_prefix,
            installed.entity_type,
            _array(keys),
            version_column or "",
            _array(like_pattern(p) for p in patterns),
            _array(like_pattern(p) for p in list_keys),
            _array(list_keys.values()),
        ]
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
    return installed


def uninstall(dsn: str, table: str) -> bool:
    """Remove the capture trigger from ``table``; the captured rows stay. False when there
    was none."""
    with connect(dsn) as conn, conn.cursor() as cur:
        oid, schema, name = _resolve_table(cur, table)
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


def connect(dsn: str, **options: object) -> psycopg.Connection:
    """A connection whose ``with`` block is one transaction, or a one-line error."""
    try:
        return psycopg.connect(dsn, **options)
    except psycopg.Error as exc:
        raise AuditError(f"cannot connect to PostgreSQL: {first_line(exc)}") from None
