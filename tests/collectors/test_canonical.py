"""Canonical JSON: the SQL route (a VARIANT round trip) writes what the Python route writes.

Containers without floats, escapes or long digit runs are canonicalised in SQL during the
ingest; the rest by ``canonical_text``. A value must come out the same text either way, or
a detector would see a change where there is none.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sample_event import event

from collectors.canonical import canonical_text
from collectors.ingest import load_lines
from collectors.store import open_store

keys = st.text(max_size=4) | st.sampled_from(["a", "B", "_", "é", "z", "ä", "😀", ""])
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, -0, 1.0, 1e3, 2**53, 2**63 - 1, -(2**63), "v1.2", "a\\b", "\u2028"])
    | st.text(max_size=6)
)
containers = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
).filter(lambda v: isinstance(v, list | dict))


@pytest.fixture(scope="module")
def con():
    """One store for the module: opening one per example was most of the test's time."""
    con = open_store(":memory:")
    yield con
    con.close()


def stored_old(con, values: list) -> list[str]:
    con.execute("DELETE FROM events")
    lines = [json.dumps(event(field=f"f{i}", old=v)) for i, v in enumerate(values)]
    summary = load_lines(con, lines, source="test")
    assert summary.ingested == len(values), summary.reasons
    rows = con.execute("SELECT old::VARCHAR FROM events ORDER BY seq").fetchall()
    return [old for (old,) in rows]


@settings(max_examples=200, deadline=None)
@given(values=st.lists(containers, min_size=1, max_size=8))
def test_sql_and_python_write_the_same_canonical_text(con, values):
    assert stored_old(con, values) == [canonical_text(json.dumps(v)) for v in values]


def test_keys_are_sorted_at_every_depth_in_sql(con):
    # Nothing here sends the value to Python: no float, escape or long number.
    value = {"b": [{"z": 1, "y": {"d": None, "c": "x"}}], "a": True, "B": -0}
    assert stored_old(con, [value]) == ['{"B":0,"a":true,"b":[{"y":{"c":"x","d":null},"z":1}]}']


def test_integers_beyond_64_bits_inside_a_container_stay_exact(con):
    big = [-(2**65), 2**64 + 1, 10**30]
    value = {"c": big, "n": {"x": 2**70, "f": 1.0}}
    assert stored_old(con, [value]) == [
        json.dumps({"c": big, "n": {"f": 1, "x": 2**70}}, separators=(",", ":"), sort_keys=True)
    ]
