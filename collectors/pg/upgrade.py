"""Upgrade a database captured by schema version 1 to the current one, in the transaction of
the `audit pg install` that finds it.

Version 1 diffed each row change in the trigger and stored one conflict_audit.transitions
row per changed field; its trigger's arguments held the settings, the patterns turned into
LIKE patterns. The upgrade stores each trigger's settings as an installation and points the
trigger at the current function (so the tables stay captured without a gap: writers wait
for this transaction), drops what only the diff in SQL needed, and leaves the transitions
table and its rows, which every pull keeps reading (sql/pull_v1.sql) until the owner drops
it.
"""

from __future__ import annotations

import psycopg

from audit.errors import AuditError
from collectors.pg.database import SCHEMA_VERSION, TRIGGER, attach, create_objects, sql_file

# Version 1's capture(prefix, entity_type, key_columns, version_column, exclude,
# list_patterns, list_keys); prefix and the patterns are recomputed from the rest.
_VERSION_1_ARGUMENTS = 7


def from_version_1(cur: psycopg.Cursor) -> None:
    triggers = cur.execute(
        "SELECT t.tgrelid, n.nspname, c.relname, t.tgnargs, t.tgargs FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE t.tgname = %s AND t.tgfoid = 'conflict_audit.capture()'::regprocedure "
        "ORDER BY t.tgrelid",
        [TRIGGER],
    ).fetchall()
    encoding = cur.connection.info.encoding
    settings = []
    for oid, schema, name, count, raw in triggers:
        if count != _VERSION_1_ARGUMENTS:
            raise AuditError(
                f"cannot upgrade the capture of {schema}.{name}: its trigger has {count} "
                "arguments, not version 1's; run `audit pg uninstall` and `install` for it"
            )
        _prefix, entity_type, keys, version, exclude, patterns, list_keys = (
            part.decode(encoding) for part in bytes(raw).split(b"\0")[:count]
        )
        keys, exclude, patterns, list_keys = cur.execute(
            "SELECT %s::text[], %s::text[], %s::text[], %s::text[]",
            [keys, exclude, patterns, list_keys],
        ).fetchone()
        settings.append((oid, schema, name, {
            "entity_type": entity_type,
            "key_columns": keys,
            "version_column": version or None,
            "exclude": [_from_like(p) for p in exclude],
            "list_keys": {_from_like(p): k for p, k in zip(patterns, list_keys, strict=True)},
        }))
    cur.execute(sql_file("upgrade_v1.sql"))
    create_objects(cur)
    for oid, schema, name, options in settings:
        attach(cur, oid, schema, name, **options)
    cur.execute("UPDATE conflict_audit.meta SET value = %s WHERE key = 'schema_version'",
                [str(SCHEMA_VERSION)])


def _from_like(pattern: str) -> str:
    """A version 1 LIKE pattern back as the docs/diff.md pattern it was made from (``%`` was
    ``*``; ``\\`` escaped a literal ``%``, ``_`` or ``\\``)."""
    out, escaped = [], False
    for char in pattern:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append("*" if char == "%" else char)
    return "".join(out)
