"""The trigger's jsonb diff against the worked cases of docs/diff.md.

Each case's documents are the before and after of a jsonb column `doc`; the trigger sees
the row, so a case path `p` is captured as `doc.p` (`doc[...]` for a keyed list at the root,
`doc` for the root itself) and the case's patterns are translated the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from collectors.pg import install

CASES = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "diff_cases.json").read_text(encoding="utf-8")
)["cases"]
COLUMN = "doc"


def row_patterns(pattern: str) -> list[str]:
    """The row-path patterns that match `doc`-relative paths exactly as `pattern` does."""
    if pattern == "$":  # the document's root is the column itself
        return [COLUMN]
    if not pattern.startswith("*"):
        return [COLUMN + ("" if pattern.startswith("[") else ".") + pattern]
    found = [f"{COLUMN}.{pattern}", f"{COLUMN}[{pattern}"]
    if set(pattern) == {"*"}:  # matches the root too
        found.append(COLUMN)
    return found


def document_field(field: str) -> str:
    if field == COLUMN:
        return "$"
    return field[len(COLUMN) + (field[len(COLUMN)] == "."):]


def expected(case: dict) -> list[tuple]:
    return sorted(
        (c["field"], c["change"], json.dumps(c.get("old"), sort_keys=True) if "old" in c else None,
         json.dumps(c.get("new"), sort_keys=True) if "new" in c else None)
        for c in case["changes"]
    )


@pytest.fixture(scope="module")
def docs_db(pg_server):
    """One database for every case: each case reinstalls the trigger with its options."""
    name = "diff_conformance"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    dsn = pg_server.dsn(name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE docs (id int PRIMARY KEY, {COLUMN} jsonb)")
    yield dsn
    with psycopg.connect(pg_server.dsn(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_trigger_diffs_like_every_recorder(docs_db, case):
    list_keys = case.get("list_keys", {"*": "id"})
    row_keys: dict = {}
    for pattern, key in list_keys.items():  # the first pattern that matches wins
        for p in row_patterns(pattern):
            row_keys.setdefault(p, key)
    install(
        docs_db, "docs",
        exclude=[p for pattern in case.get("exclude", []) for p in row_patterns(pattern)],
        list_keys=row_keys,
    )
    with psycopg.connect(docs_db, autocommit=True) as conn:
        (row_id,) = conn.execute(
            "INSERT INTO docs SELECT coalesce(max(id), 0) + 1, %s FROM docs RETURNING id",
            [json.dumps(case["before"])],
        ).fetchone()
        (first,) = conn.execute("SELECT coalesce(max(id), 0) FROM conflict_audit.transitions"
                                ).fetchone()
        conn.execute("UPDATE docs SET doc = %s WHERE id = %s", [json.dumps(case["after"]), row_id])
        rows = conn.execute(
            "SELECT field, change, old::text, new::text FROM conflict_audit.transitions "
            "WHERE id > %s", [first]
        ).fetchall()
    got = sorted(
        (document_field(f), change,
         None if old is None else json.dumps(json.loads(old), sort_keys=True),
         None if new is None else json.dumps(json.loads(new), sort_keys=True))
        for f, change, old, new in rows
    )
    assert got == expected(case)
