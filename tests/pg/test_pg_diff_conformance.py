"""The worked cases of docs/diff.md through the whole capture: trigger, row images in jsonb,
`audit pg pull`, the store.

Each case's documents are the before and after of a jsonb column `doc` of one row; the row
is the document the pull diffs, so a case path `p` is captured as `doc.p` (`doc[...]` for a
keyed list at the root, `doc` for the root itself) and the case's patterns are translated
the same way. Every case is installed with its own settings and written before one pull:
each row change is diffed with the settings it was captured under.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pg_events import pulled

from audit.diff import MISSING, diff
from collectors.pg import install

CASES = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "diff_cases.json").read_text(encoding="utf-8")
)["cases"]
COLUMN = "doc"
# What jsonb and the way through it must keep: numbers by value (1.0, an integer beyond 64
# bits), key order that does not matter, text beyond ASCII, in keys too.
ROUND_TRIP = {
    "name": "jsonb round trip",
    "before": {"n": 1, "f": 1.5, "big": 2**70 + 1, "s": "naïve", "日本": {"x": 1, "y": [1.0]}},
    "after": {"日本": {"y": [1], "x": 1}, "s": "naïve ☃", "big": 2**70 + 3, "f": 1.50, "n": 1.0,
              "added": {"k": -(2**40), "e": "😀"}},
}


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


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON values: numbers by value (exactly), booleans not numbers, key order
    ignored."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(same_json, a, b))
    return type(a) is type(b) and a == b


@pytest.fixture(scope="module")
def pulled_cases(pg_server) -> dict[str, list[dict]]:
    """Every case written under its own installation, then one pull: the events by case."""
    name = "diff_conformance"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    dsn = pg_server.dsn(name)
    cases = [*CASES, ROUND_TRIP]
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE docs (id int PRIMARY KEY, {COLUMN} jsonb)")
            for n, case in enumerate(cases):  # before any install: not captured
                conn.execute("INSERT INTO docs VALUES (%s, %s)", [n, json.dumps(case["before"])])
        for n, case in enumerate(cases):
            row_keys: dict = {}
            for pattern, key in case.get("list_keys", {"*": "id"}).items():
                for p in row_patterns(pattern):
                    row_keys.setdefault(p, key)  # the first pattern that matches wins
            install(dsn, "docs",
                    exclude=[p for pattern in case.get("exclude", [])
                             for p in row_patterns(pattern)],
                    list_keys=row_keys)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("UPDATE docs SET doc = %s WHERE id = %s",
                             [json.dumps(case["after"]), n])
        events = pulled(dsn)
    finally:
        with psycopg.connect(pg_server.dsn(), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    return {case["name"]: [e for e in events if e["entity"] == f"docs:{n}"]
            for n, case in enumerate(cases)}


def assert_same_changes(events: list[dict], changes: list[dict]) -> None:
    got = sorted(events, key=lambda e: e["field"])
    want = sorted(changes, key=lambda c: c["field"])
    assert [(document_field(e["field"]), e["change"]) for e in got] == [
        (c["field"], c["change"]) for c in want]
    for event, change in zip(got, want, strict=True):
        for side in ("old", "new"):
            assert (side in event) == (side in change), (change["field"], side)
            if side in change:
                assert same_json(event[side], change[side]), (change["field"], side)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_capture_diffs_like_every_recorder(pulled_cases, case):
    assert_same_changes(pulled_cases[case["name"]], case["changes"])


def test_values_come_through_jsonb_and_the_store_as_the_instrumentation_has_them(pulled_cases):
    expected = [{"field": field, "change": kind,
                 **({} if old is MISSING else {"old": old}),
                 **({} if new is MISSING else {"new": new})}
                for field, kind, old, new in diff(ROUND_TRIP["before"], ROUND_TRIP["after"])]
    assert {c["field"] for c in expected} == {"big", "s", "added"}  # 1 = 1.0, order ignored
    assert_same_changes(pulled_cases[ROUND_TRIP["name"]], expected)
    (big,) = [e for e in pulled_cases[ROUND_TRIP["name"]] if e["field"] == "doc.big"]
    assert (big["old"], big["new"]) == (2**70 + 1, 2**70 + 3)  # exactly: not as floats
