"""The ingest's fast path: it stores exactly what the exact path would, or leaves the line.

A line that starts with white space never takes the fast path (it wants a line that starts
with '{'), so ingesting the same lines with and without a leading space compares the two
paths with no hook into the code.
"""

from __future__ import annotations

import json

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sample_event import event

from audit.event import EVENT_KEYS
from collectors import canonical
from collectors import ingest as ingest_module
from collectors.ingest import load_lines
from collectors.store import open_store

COLUMNS = (
    "seq, event_id, ts, entity, entity_type, field, change, old, new, writer, actor, write_id, "
    "base_version, version, source_ts, priority, trace_id, span_id, attrs, line"
)


def stored(lines: list[str]) -> tuple:
    con = open_store(":memory:")
    try:
        summary = load_lines(con, lines, source="test")
        rows = con.execute(f"SELECT {COLUMNS} FROM events ORDER BY seq").fetchall()
        rejected = con.execute("SELECT line, reason FROM rejected_events ORDER BY line").fetchall()
    finally:
        con.close()
    return summary, rows, rejected


# Strings a number, boolean or container would also print as, and strings that need escapes.
LOOKALIKES = ["5", "-3", "1e5", "0.5", "true", "false", "NaN", "Infinity", "-Infinity"]
TRICKY = ["[draft]", "{x}", "", "é", 'q"q', "back\\slash", "\x01", "\u2028", "2026", "1f3a"]
strings = st.sampled_from(LOOKALIKES + TRICKY) | st.text(max_size=8)
not_strings = st.sampled_from([5, -1, 1.5, True, None, [1], {"a": 1}])
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | strings,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(strings, children, max_size=3)
    ),
    max_leaves=8,
)
integers = st.integers(-(2**63), 2**63 - 1) | st.sampled_from([2**63, 1.0, 1.5, "3", True])
timestamps = st.sampled_from(
    ["2026-01-01T10:00:00Z", "2026-01-01t10:00:00.123456+02:00", "2026-01-01 10:00:00Z"]
    + ["2026-13-01T10:00:00Z", "2026-01-01T10:00:00", "yesterday", 1767261600]
)
hexes = st.sampled_from(["4bf92f3577b34da6", "ABCDEF", "123", "not-hex", 123])
OPTIONAL = {
    "event": st.sampled_from(["field.transition", "http.request", None]),
    "event_id": strings | not_strings,
    "entity_type": strings | not_strings,
    "change": st.sampled_from(["changed", "added", "removed", "moved", None]),
    "old": json_values,
    "new": json_values,
    "actor": strings | not_strings,
    "write_id": strings,
    "base_version": integers,
    "version": integers,
    "source_ts": timestamps,
    "priority": integers | st.sampled_from([2**40]),
    "trace_id": hexes,
    "span_id": hexes,
    "attrs": st.dictionaries(strings, json_values, max_size=2) | not_strings,
}
events = st.builds(
    lambda required, optional, dropped: json.dumps(
        {k: v for k, v in {**required, **optional}.items() if k not in dropped}
    ),
    st.fixed_dictionaries(
        {"ts": timestamps, "entity": strings | not_strings, "field": strings, "writer": strings}
    ),
    st.fixed_dictionaries({}, optional=OPTIONAL),
    st.sets(st.sampled_from(["ts", "entity", "old", "new"]), max_size=1),
)


# Lines the parser refuses: cut short, or whole-looking ('{' to '}') but broken inside, which
# sends the strict parse back to the tolerant one.
malformed = st.sampled_from(
    ['{"event": "field.transition", "ts": "2026-', '{"a": 1,, "b": 2}', '{"a": 1}{"b": 2}']
)


@settings(max_examples=10, deadline=None)
@given(lines=st.lists(events | malformed, min_size=20, max_size=200))
def test_both_paths_store_the_same_rows_ids_and_reasons(lines):
    """Many lines per ingest: the paths meet the same mix of rules, duplicates and malformed
    lines in one batch, at a fraction of the cost of one ingest per example."""
    fast_summary, fast_rows, fast_rejected = stored(lines)
    exact_summary, exact_rows, exact_rejected = stored([" " + line for line in lines])
    assert exact_summary.fast == 0
    assert fast_rows == exact_rows
    assert fast_rejected == exact_rejected
    for key in ("ingested", "duplicates", "skipped", "reasons"):
        assert getattr(fast_summary, key) == getattr(exact_summary, key), key


NAN, INF = float("nan"), float("inf")  # json.dumps writes them as NaN, Infinity
# Values of each kind of key (audit/event.py), the first of each plain enough for the fast
# path; the others are edge cases and wrong types. Every kind must have samples.
SAMPLES = {
    "string": ["block-A", "", "é", 'q"q', "back\\slash", "\u2028", "2026", "1f3a"]
    + LOOKALIKES
    + ["[draft]", "{x}", 5, -1, 1.5, True, None, [1], {"a": 1}],
    "timestamp": ["2026-01-01T10:00:00Z", "2026-01-01t10:00:00.123456+02:00"]
    + ["2026-01-01 10:00:00Z", "2026-13-01T10:00:00Z", "2026-01-01T10:00:00", "yesterday"]
    + ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00", "2026-01-01T24:00:00Z"]
    + ["2026-01-01T10:00:00+99:59", 1767261600, None, ["2026-01-01T10:00:00Z"]],
    "integer": [7, 0, -1, 2**63 - 1, -(2**63), 2**63, 1.0, 1.5, 1e3, "3", True, None, [1]],
    "integer32": [70, 2**31 - 1, -(2**31), 2**31, 7.0, "70", None],
    "json": ["text", None, 1, -0.5, 1.0, 1e3, 2**64, "1.0", True, [1, 2.0], {"b": 1, "a": [1.5]}]
    + [{"a": {"b": None}}, [], {}, "é\u0000", "NaN", NAN, -INF, [INF], {"a": NAN}, 10**400]
    + [[-(10**400)], 1e308, [1e-400]],
    "object": [{"request": "r-1"}, {}, {"a": [1.5, {"b": "c"}]}, [1], "x", 1, None]
    + [{"n": NAN}, {"n": [1e300, "Infinity"]}, {"n": 10**400}],
    "change": ["changed", "added", "removed", "moved", "", 1, None],
    "hex": ["4bf92f3577b34da6", "ABCDEF", "123", "1e5", "not-hex", "a" * 65, 123, None],
}


def with_value(key: str, value, n: int) -> str:
    """An event with ``key`` set to ``value``, told apart from the others by its entity."""
    other = "field" if key == "entity" else "entity"
    return json.dumps(event(**{other: f"{key}-{n}", key: value}))


def kind_lines() -> list[str]:
    """Each key given each sample of its kind, left out when required, and given twice."""
    lines = []
    for key, (kind, required, _) in EVENT_KEYS.items():
        lines += [with_value(key, value, n) for n, value in enumerate(SAMPLES[kind])]
        if required:
            lines.append(with_value(key, ..., -1))
        # The key given twice, with the same plain value and with another sample.
        for n, again in enumerate(SAMPLES[kind][:2]):
            once = with_value(key, SAMPLES[kind][0], 100 + n)
            lines.append(once[:-1] + f', "{key}": {json.dumps(again)}}}')
    return lines


def test_every_kind_of_key_has_samples():
    assert {kind for kind, _, _ in EVENT_KEYS.values()} == set(SAMPLES)


def test_both_paths_take_and_refuse_the_same_values_of_every_kind():
    lines = kind_lines()
    fast_summary, fast_rows, fast_rejected = stored(lines)
    exact_summary, exact_rows, exact_rejected = stored([" " + line for line in lines])
    assert (fast_rows, fast_rejected) == (exact_rows, exact_rejected)
    assert fast_summary.reasons == exact_summary.reasons
    assert exact_summary.rejected > len(EVENT_KEYS)  # the samples do break the rules


def test_the_fast_path_takes_a_plain_value_of_every_kind():
    plain = {key: SAMPLES[kind][0] for key, (kind, _, _) in EVENT_KEYS.items()}
    plain["event"] = "field.transition"  # any other names an ordinary log line
    lines = [with_value(key, value, 0) for key, value in plain.items()]
    summary, _, _ = stored(lines)
    assert (summary.ingested, summary.fast) == (len(lines), len(lines))


def test_plain_events_take_the_fast_path():
    lines = [json.dumps(event(field=f"f{i}", old=[{"b": i, "a": 1.0}])) for i in range(3)]
    summary, rows, _ = stored(lines)
    assert (summary.ingested, summary.fast) == (3, 3)
    assert rows[0][7] == '[{"a":1,"b":0}]'  # canonical on the fast path too


@pytest.mark.parametrize("lookalike", LOOKALIKES + ["[draft]", "{x}"])
def test_a_string_that_looks_like_another_type_is_stored_as_the_string_it_is(lookalike):
    summary, rows, _ = stored([json.dumps(event(entity=lookalike, actor=lookalike))])
    assert (summary.ingested, summary.fast) == (1, 0)  # left for the exact path
    assert rows[0][3] == lookalike and rows[0][10] == lookalike


def test_the_first_of_repeated_event_ids_in_one_batch_is_kept():
    lines = [json.dumps(event(event_id="e-1", new=n)) for n in ("first", "second", "third")]
    lines.append(json.dumps(event(event_id="e-2")))
    summary, rows, _ = stored(lines)
    assert (summary.ingested, summary.duplicates) == (2, 2)
    assert [(r[1], r[8], r[-1]) for r in rows] == [("e-1", '"first"', 1), ("e-2", '"b"', 4)]


def test_depth_counts_for_stored_values_not_for_keys_the_store_drops():
    deep = "[" * 70 + "]" * 70
    lines = [
        json.dumps(event())[:-1] + f', "extra": {deep}}}',
        json.dumps(event())[:-1] + f', "attrs": {{"a": {deep}}}}}',
    ]
    summary, rows, rejected = stored(lines)
    assert summary.ingested == 1 and rows[0][-1] == 1
    assert rejected == [(2, "nested deeper than 64 levels")]


def test_a_value_that_cannot_be_canonicalised_is_refused_not_stored_as_absent(monkeypatch):
    def fail(text):
        raise ValueError("cannot")

    monkeypatch.setattr(canonical, "canonical_text", fail)
    monkeypatch.setattr(canonical, "_SEEN", {})  # nothing remembered from earlier tests
    # Floats keep a container on the Python side (ints and strings are sorted in SQL).
    summary, rows, rejected = stored([json.dumps(event(old=[1.5], new=[2.5]))])
    assert (summary.ingested, rows) == (0, [])
    assert rejected == [(1, '"old" could not be canonicalised')]


def test_ids_stored_before_or_repeated_in_the_batch_count_as_duplicates():
    con = open_store(":memory:")
    try:
        first = [json.dumps(event(event_id=i, new=f"{i} first")) for i in ("e-1", "e-2")]
        load_lines(con, first, source="a")
        again = [
            json.dumps(event(event_id=i, new=f"{i} later")) for i in ("e-2", "e-3", "e-3", "e-1")
        ]
        summary = load_lines(con, again, source="b")
        rows = con.execute("SELECT event_id, new, source, line FROM events ORDER BY seq").fetchall()
    finally:
        con.close()
    assert (summary.ingested, summary.duplicates) == (1, 3)
    assert rows == [
        ("e-1", '"e-1 first"', "a", 1),
        ("e-2", '"e-2 first"', "a", 2),
        ("e-3", '"e-3 later"', "b", 2),
    ]


def test_a_broken_line_that_looks_whole_is_rejected_and_the_batch_still_goes_fast():
    # The strict parse fails on line 2 and aborts the transaction; the batch is rolled back
    # and parsed again tolerantly, still on the fast path for the good lines.
    con = open_store(":memory:")
    try:
        default = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()
        lines = [json.dumps(event(event_id="e-1")), '{"a": 1}{"b": 2}']
        lines.append(json.dumps(event(event_id="e-2")))
        summary = load_lines(con, lines, source="test")
        rows = con.execute("SELECT event_id, line FROM events ORDER BY seq").fetchall()
        rejected = con.execute("SELECT line, reason FROM rejected_events").fetchall()
        after = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()
    finally:
        con.close()
    assert (summary.ingested, summary.fast) == (2, 2)
    assert rows == [("e-1", 1), ("e-2", 3)]
    assert rejected == [(2, "invalid JSON")]
    assert after == default  # the fast path's settings are put back after the rollback


def test_lines_cut_short_never_reach_the_strict_parse(monkeypatch):
    """A line cut short (a writer killed mid-line) does not end in '}': it goes to the exact
    path without failing the strict parse, so the batch is parsed once. Were it to fail,
    the tolerant parse, made to fail here, would be used."""
    monkeypatch.setattr(ingest_module, "_FAST", "SELECT error('parsed again: ' || $1 || $2)")
    whole = [json.dumps(event(event_id=f"e-{i}")) for i in range(4)]
    cut = [line[: len(line) // 2] for line in whole[:2]] + [whole[0][:-1] + " ", "{"]
    summary, rows, rejected = stored(whole[:2] + cut + whole[2:])
    assert (summary.ingested, summary.fast) == (4, 4)
    assert [row[-1] for row in rows] == [1, 2, 7, 8]
    assert rejected == [(n, "invalid JSON") for n in (3, 4, 5, 6)]


def test_a_batch_that_fails_leaves_the_connection_as_it_found_it(monkeypatch):
    # A statement that fails while the batch is registered and the settings changed.
    failing = "SELECT CAST($2 AS INTEGER) + $1"
    monkeypatch.setattr(ingest_module, "_FAST_STRICT", failing)
    monkeypatch.setattr(ingest_module, "_FAST", failing)
    con = open_store(":memory:")
    try:
        default = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()
        with pytest.raises(duckdb.ConversionException):
            load_lines(con, [json.dumps(event())], source="test")
        assert con.execute("SELECT count(*) FROM events").fetchall() == [(0,)]
        after = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()
        assert after == default
        views = con.execute(  # a batch's Arrow tables are registered as temporary views
            "SELECT view_name FROM duckdb_views() WHERE temporary AND NOT internal"
        ).fetchall()
        assert views == []
    finally:
        con.close()
