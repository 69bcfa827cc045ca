"""The bulk ingest: validation with recorded rejects, idempotence, appended files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sample_event import event

from collectors.ingest import BATCH_ROWS, _line_ends, ingest, lines_table, load_lines
from collectors.store import open_store


def write_lines(path: Path, lines: list, mode: str = "w") -> Path:
    with open(path, mode, encoding="utf-8") as f:
        for line in lines:
            f.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path


def rejects(con) -> dict[int, str]:
    return dict(con.execute("SELECT line, reason FROM rejected_events ORDER BY line").fetchall())


def count(con, table: str = "events") -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


REJECTED = [
    ("not json at all", "invalid JSON"),
    ('{"ts": "2026-01-01T10:00:00Z", "entity": "x"', "invalid JSON"),
    ("[1, 2, 3]", "not a JSON object"),
    ('"just a string"', "not a JSON object"),
    (event(ts=...), 'missing required key "ts"'),
    (event(entity=...), 'missing required key "entity"'),
    (event(field=...), 'missing required key "field"'),
    (event(writer=...), 'missing required key "writer"'),
    (event(entity=5), '"entity" must be a string, got integer'),
    (event(writer=None), '"writer" must be a string, got null'),
    (event(field=["a"]), '"field" must be a string, got array'),
    (event(ts="2026-01-01 10:00:00"), '"ts" is not an RFC 3339 timestamp with offset'),
    (event(ts="2026-13-01T10:00:00Z"), '"ts" is not an RFC 3339 timestamp with offset'),
    (event(ts="yesterday"), '"ts" is not an RFC 3339 timestamp with offset'),
    (event(ts=1767261600), '"ts" must be a string, got integer'),
    (event(source_ts="2026-01-01"), '"source_ts" is not an RFC 3339 timestamp with offset'),
    (event(version="3"), '"version" must be a 64-bit integer'),
    (event(version=1.5), '"version" must be a 64-bit integer'),
    (event(version=2**64), '"version" must be a 64-bit integer'),
    (event(base_version=True), '"base_version" must be a 64-bit integer'),
    (event(priority="high"), '"priority" must be a 32-bit integer'),
    (event(priority=2**40), '"priority" must be a 32-bit integer'),
    (event(attrs=[1]), '"attrs" must be an object, got array'),
    (event(trace_id="not-hex!"), '"trace_id" must be a hex string'),
    (event(change="modified"), '"change" must be one of changed, added, removed'),
    (event(event=7), '"event" must be a string, got integer'),
    (event(new=...), 'change "changed" needs "new"'),
    (event(change="added", old=..., new=...), 'change "added" needs "new"'),
    (event(change="removed", old=..., new=...), 'change "removed" needs "old"'),
    ("[" * 100 + "]" * 100, "nested deeper than 64 levels"),
    (
        '{"ts":"2026-01-01T10:00:00Z","entity":"e","field":"f","writer":"w","old":1,"new":'
        + "[" * 70
        + "]" * 70
        + "}",
        "nested deeper than 64 levels",
    ),
    (  # deep enough to overflow a recursive canonicaliser's stack
        '{"ts":"2026-01-01T10:00:00Z","entity":"e","field":"f","writer":"w","old":1,"new":'
        + "[" * 100_000
        + "]" * 100_000
        + "}",
        "nested deeper than 64 levels",
    ),
]


def test_each_rejection_reason_is_recorded_and_the_ingest_goes_on(con, tmp_path):
    lines = [event(entity="good-1")] + [line for line, _ in REJECTED] + [event(entity="good-2")]
    path = write_lines(tmp_path / "mixed.jsonl", lines)
    summary = ingest(con, [path])
    assert summary.ingested == 2
    assert summary.rejected == len(REJECTED)
    got = rejects(con)
    for n, (_, reason) in enumerate(REJECTED, start=2):
        assert got[n].startswith(reason), (n, got[n], reason)
    raw = con.execute("SELECT raw FROM rejected_events WHERE line = 2").fetchall()[0][0]
    assert raw == "not json at all"
    assert sorted(e for (e,) in con.execute("SELECT entity FROM events").fetchall()) == [
        "good-1",
        "good-2",
    ]


def test_invalid_utf8_is_rejected_with_its_line_and_the_rest_is_kept(con, tmp_path):
    path = tmp_path / "bytes.jsonl"
    good = json.dumps(event()).encode()
    path.write_bytes(
        good + b"\n" + b'{"entity": "\xff\xfe"}\n' + json.dumps(event(new="c")).encode() + b"\n"
    )
    summary = ingest(con, [path])
    assert (summary.ingested, summary.rejected) == (2, 1)
    line, raw, reason = con.execute("SELECT line, raw, reason FROM rejected_events").fetchall()[0]
    assert line == 2 and reason.startswith("invalid UTF-8") and "\\xff" in raw


def test_ordinary_log_lines_are_skipped_and_counted_not_rejected(con, tmp_path):
    path = write_lines(
        tmp_path / "app.log",
        [
            {"event": "http.request", "path": "/api/x", "status": 200},
            event(),
            {"event": "user logged in", "level": "info"},
            "",
            "   ",
        ],
    )
    summary = ingest(con, [path])
    assert (summary.ingested, summary.skipped, summary.rejected) == (1, 2, 0)


def test_reingesting_is_a_no_op_and_derived_ids_make_copies_duplicates(con, tmp_path):
    lines = [event(new=f"v{i}", old=f"v{i - 1}") for i in range(5)]
    first = write_lines(tmp_path / "a.jsonl", lines)
    assert ingest(con, [first]).ingested == 5
    again = ingest(con, [first])
    assert (again.ingested, again.unchanged_files) == (0, 1)
    copy = write_lines(tmp_path / "copy.jsonl", list(reversed(lines)))
    summary = ingest(con, [copy])
    assert (summary.ingested, summary.duplicates) == (0, 5)
    assert count(con) == 5


def test_key_order_and_white_space_do_not_change_a_derived_id(con, tmp_path):
    one = (
        '{"ts":"2026-01-01T10:00:00Z","entity":"e","field":"f",'
        '"old":{"a":1,"b":2},"new":2,"writer":"w"}'
    )
    two = (
        '{ "writer": "w", "new": 2.0, "old": {"b": 2, "a": 1.0}, "field": "f", '
        '"entity": "e", "ts": "2026-01-01T10:00:00Z" }'
    )
    summary = ingest(con, [write_lines(tmp_path / "k.jsonl", [one, two])])
    assert (summary.ingested, summary.duplicates) == (1, 1)


def test_explicit_event_ids_deduplicate_within_a_file(con, tmp_path):
    path = write_lines(
        tmp_path / "d.jsonl", [event(event_id="e-1"), event(event_id="e-1", new="x")]
    )
    summary = ingest(con, [path])
    assert (summary.ingested, summary.duplicates) == (1, 1)
    assert con.execute("SELECT new FROM events").fetchall() == [('"b"',)]


def test_an_appended_file_loads_only_its_new_lines_with_their_line_numbers(con, tmp_path):
    path = write_lines(tmp_path / "grow.jsonl", [event(new=f"v{i}") for i in range(3)])
    assert ingest(con, [path]).ingested == 3
    write_lines(path, [event(new=f"v{i}") for i in range(3, 5)] + ["broken"], mode="a")
    summary = ingest(con, [path])
    assert (summary.ingested, summary.duplicates, summary.rejected) == (2, 0, 1)
    assert [r[0] for r in con.execute("SELECT line FROM events ORDER BY seq").fetchall()] == [
        1,
        2,
        3,
        4,
        5,
    ]
    assert rejects(con) == {6: "invalid JSON"}


def test_an_incomplete_last_line_waits_for_the_next_ingest(con, tmp_path):
    path = tmp_path / "partial.jsonl"
    whole = json.dumps(event(new="last"))
    path.write_text(json.dumps(event()) + "\n" + whole[:20])
    summary = ingest(con, [path], notify=lambda _: None)
    assert (summary.ingested, summary.rejected, summary.pending_lines) == (1, 0, 1)
    path.write_text(json.dumps(event()) + "\n" + whole + "\n")
    summary = ingest(con, [path])
    assert (summary.ingested, summary.rejected, summary.pending_lines) == (1, 0, 0)


def test_a_complete_last_line_without_newline_is_taken(con, tmp_path):
    path = tmp_path / "nonl.jsonl"
    path.write_text(json.dumps(event()) + "\n" + json.dumps(event(new="z")))
    assert ingest(con, [path]).ingested == 2
    assert ingest(con, [path]).unchanged_files == 1


def test_a_rewritten_file_is_read_again_without_doubling(con, tmp_path):
    path = write_lines(tmp_path / "rw.jsonl", [event(new="a1"), "oops"])
    ingest(con, [path])
    write_lines(path, [event(new="b1"), event(new="a1")])  # truncated and rewritten
    summary = ingest(con, [path], notify=lambda _: None)
    assert (summary.ingested, summary.duplicates) == (1, 1)
    assert count(con, "rejected_events") == 0  # the rejects of the old content are gone


def test_folders_are_read_recursively_and_a_json_array_file_works(con, tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    write_lines(tmp_path / "a" / "one.jsonl", [event(new="1")])
    write_lines(tmp_path / "a" / "b" / "two.log", [event(new="2")])
    (tmp_path / "a" / "b" / "three.json").write_text(json.dumps([event(new="3"), event(new="4")]))
    (tmp_path / "a" / "ignored.txt").write_text(json.dumps(event(new="x")))
    (tmp_path / "a" / "spool.jsonl.part").write_text(json.dumps(event(new="y")))
    summary = ingest(con, [tmp_path / "a"])
    assert (summary.files, summary.ingested) == (3, 4)


# Elements whose verdict a parse-and-write-again would decide before the rules: a key given
# twice (a parser keeps one), an integer beyond 64 bits (orjson makes it a float), NaN.
TRICKY = [
    json.dumps(event(new="plain")),
    json.dumps(event(field="n", old=1, new=2)).replace('"new": 2', '"new": ' + "1" * 30),
    json.dumps(event(new="x")).replace('"field"', '"field": "twice", "field"'),
    json.dumps(event(field="f", old=1, new=2)).replace('"new": 2', '"new": NaN'),
]


def _stored(con) -> list[tuple]:
    return con.execute("SELECT entity, field, old, new FROM events ORDER BY line").fetchall()


def test_a_json_array_is_cut_from_its_text_so_each_element_meets_the_rules(tmp_path):
    """Pretty-printed or not, a .json array stores what the same events as JSON Lines store,
    and rejects the same lines for the same reasons (each element counts as a line)."""
    text = "[\n  " + ",\n  ".join(line.replace(", ", ",\n    ") for line in TRICKY) + "\n]\n"
    (tmp_path / "events.json").write_text(text)
    write_lines(tmp_path / "events.jsonl", TRICKY)
    seen = []
    for name in ("events.json", "events.jsonl"):
        con = open_store(str(tmp_path / f"{name}.duckdb"))
        summary = ingest(con, [tmp_path / name])
        seen.append((summary.ingested, _stored(con), rejects(con)))
        con.close()
    assert seen[0] == seen[1]
    ingested, stored, rejected = seen[0]
    assert ingested == 2 and stored[1][3] == "1" * 30
    assert rejected == {3: 'duplicate key "field"', 4: rejected[4]} and "NaN" in rejected[4]


def test_a_json_file_holding_one_event_is_one_event(con, tmp_path):
    (tmp_path / "one.json").write_text(json.dumps(event(new="pretty"), indent=2) + "\n")
    (tmp_path / "lines.json").write_text(json.dumps(event(new="1")) + "\n"
                                         + json.dumps(event(new="2")) + "\n")  # JSON Lines
    summary = ingest(con, [tmp_path / "one.json", tmp_path / "lines.json"])
    assert (summary.ingested, summary.rejected) == (3, 0)
    assert sorted(v for *_, v in _stored(con)) == ['"1"', '"2"', '"pretty"']


def test_a_json_file_whose_name_reads_as_a_pattern_is_read_itself(con, tmp_path):
    """DuckDB's readers expand `*`, `?` and `[…]`: `ev[1].json` would read `ev1.json`."""
    (tmp_path / "ev[1].json").write_text(json.dumps([event(new="mine")], indent=1))
    (tmp_path / "ev1.json").write_text(json.dumps([event(new="other")], indent=1))
    (tmp_path / "e*.json").write_text(json.dumps([event(new="star")], indent=1))
    summary = ingest(con, [tmp_path / "ev[1].json", tmp_path / "e*.json"])
    assert (summary.ingested, summary.rejected) == (2, 0)
    assert sorted(v for *_, v in _stored(con)) == ['"mine"', '"star"']

@pytest.mark.parametrize("text", [
    '[{"a": "line\nbreak"}]',  # a raw line break inside a string
    '[{"a": 1], {"b": 2}}',  # brackets that do not match
    '[{"a": 1}, {"b": 2}',  # never closed
])
def test_a_json_file_that_is_not_one_value_is_read_as_lines_and_rejected(con, tmp_path, text):
    (tmp_path / "bad.json").write_text(text + "\n")
    summary = ingest(con, [tmp_path / "bad.json"])
    assert summary.ingested == 0 and summary.rejected == len(text.splitlines())

def test_values_are_stored_as_canonical_json(con, tmp_path):
    path = write_lines(
        tmp_path / "v.jsonl",
        [
            event(field="a", old={"z": 1, "a": [1.0, {"y": 2, "b": None}]}, new=1.0),
            event(field="b", old="caf\u00e9", new='\\u00e9 "q"'),
            event(field="c", old=None, new=False),
            event(field="d", old=1e3, new=-0.5),
        ],
    )
    ingest(con, [path])
    rows = dict(
        (f, (o, n)) for f, o, n in con.execute("SELECT field, old, new FROM events").fetchall()
    )
    assert rows["a"] == ('{"a":[1,{"b":null,"y":2}],"z":1}', "1")
    assert orjson.loads(rows["b"][0]) == "café"
    assert rows["c"] == ("null", "false")
    assert rows["d"] == ("1000", "-0.5")


def test_a_scalar_is_written_one_way_whatever_shares_its_line(con, tmp_path):
    """Lines with a container take a second canonicalisation path; scalars must not notice."""
    pairs = [(1e16, 2), (1e16, [1]), ("\u001f", 1), ("\u001f", {"a": 1})]
    lines = [event(field=f"f{i}", old=old, new=new) for i, (old, new) in enumerate(pairs)]
    ingest(con, [write_lines(tmp_path / "s.jsonl", lines)])
    olds = [o for (o,) in con.execute("SELECT old FROM events ORDER BY field").fetchall()]
    assert olds[0] == olds[1] and olds[2] == olds[3]


def test_json_null_in_an_optional_key_means_absent(con, tmp_path):
    path = write_lines(tmp_path / "n.jsonl", [event(actor=None, version=None, attrs=None)])
    assert ingest(con, [path]).ingested == 1
    assert con.execute("SELECT actor, version, attrs FROM events").fetchall() == [
        (None, None, None)
    ]


def test_every_contract_key_is_typed(con, tmp_path):
    path = write_lines(
        tmp_path / "full.jsonl",
        [
            event(
                event_id="e-42",
                entity_type="block",
                change="changed",
                actor="u-1",
                write_id="w-9",
                base_version=4,
                version=5,
                source_ts="2026-01-01T09:59:59.5+01:00",
                priority=70,
                trace_id="0af7651916CD43DD8448EB211C80319C",
                span_id="b7ad6b7169203331",
                attrs={"request": "r-1"},
            )
        ],
    )
    ingest(con, [path])
    row = con.execute(
        "SELECT event_id, entity_type, change, actor, write_id, base_version, version, "
        "strftime(source_ts, '%H:%M:%S.%g'), priority, trace_id, span_id, attrs->>'request' "
        "FROM events"
    ).fetchall()[0]
    assert row == (
        "e-42",
        "block",
        "changed",
        "u-1",
        "w-9",
        4,
        5,
        "08:59:59.500",
        70,
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        "r-1",
    )


def test_load_lines_takes_text_and_bytes(con):
    summary = load_lines(
        con, [json.dumps(event()), json.dumps(event(new="c")).encode(), b"\xff"], source="sink:test"
    )
    assert (summary.ingested, summary.rejected) == (2, 1)
    assert con.execute("SELECT DISTINCT source FROM events").fetchall() == [("sink:test",)]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
lines_strategy = st.lists(
    st.one_of(
        st.dictionaries(
            st.sampled_from(
                [
                    "ts",
                    "entity",
                    "field",
                    "old",
                    "new",
                    "writer",
                    "version",
                    "event",
                    "change",
                    "attrs",
                ]
            ),
            json_values,
            max_size=10,
        ).map(json.dumps),
        st.builds(
            lambda d: json.dumps({**event(), **d}),
            st.dictionaries(
                st.sampled_from(["old", "new", "version", "actor"]), json_values, max_size=3
            ),
        ),
        st.text(max_size=30).filter(lambda s: "\n" not in s and "\r" not in s),
    ),
    max_size=25,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=lines_strategy)
def test_every_line_is_accounted_for(tmp_path, lines):
    """Whatever the input, each non-blank line is ingested, a duplicate, skipped or rejected."""
    con = open_store(":memory:")
    try:
        summary = load_lines(con, lines, source="prop")
        accounted = summary.ingested + summary.duplicates + summary.skipped + summary.rejected
        blank = sum(1 for line in lines if not line.strip(" \t\r\n"))
        assert accounted == len(lines) - blank
        assert count(con) == summary.ingested
        assert count(con, "rejected_events") == summary.rejected
    finally:
        con.close()


@settings(max_examples=200, deadline=None)
@given(
    data=st.lists(st.sampled_from([b"\n", b"x", b"{}"]), max_size=400).map(b"".join),
    step=st.integers(1, 8),
)
def test_line_ends_are_found_whichever_way_the_input_is_split(data, step):
    # A small step sends inputs over 32 steps through the two-thread scan, halves included.
    expected = [i + 1 for i, byte in enumerate(data) if byte == 10]
    assert _line_ends(data, step=step).tolist() == expected


@pytest.mark.parametrize("lead", [b"", b" "], ids=["fast path", "exact path"])
def test_a_blind_write_is_stored_with_old_unknown_not_null(con, lead):
    """`changed` without `old`: the writer did not read the value (docs/contract.md §1).
    A leading space keeps a line off the fast path: both paths take it."""
    lines = [orjson.dumps(event(old=..., new="b")), orjson.dumps(event(old=None, new="c"))]
    summary = load_lines(con, [lead + line for line in lines], "blind")
    assert (summary.ingested, summary.rejected, summary.fast) == (2, 0, 0 if lead else 2)
    rows = con.execute("SELECT change, old, new FROM events ORDER BY seq").fetchall()
    assert rows == [("changed", None, '"b"'), ("changed", "null", '"c"')]


def test_invalid_utf8_lines_are_blanked_where_they_are_whichever_batch():
    """Invalid UTF-8 is looked for a record batch at a time: lines on either side of a
    batch's edge, first and last, and the rest of their batches kept as they were."""
    n = 2 * BATCH_ROWS + 3
    bad = {0, BATCH_ROWS - 1, BATCH_ROWS, n - 1}
    lines = [b'{"n": %d}\r\n' % i if i % 5 else b'{"n": %d}\n' % i for i in range(n)]
    for i in bad:
        lines[i] = b'{"n": "\xff"}\n'
    table, invalid = lines_table(b"".join(lines), first_line=10)
    assert [(line, reason, at) for line, _, reason, at in invalid] == [
        (10 + i, "invalid UTF-8", 7) for i in sorted(bad)
    ]
    assert invalid[0][1] == '{"n": "\\xff"}'
    assert table.column("line").to_pylist() == list(range(10, 10 + n))
    expected = ["" if i in bad else line.decode() for i, line in enumerate(lines)]
    assert table.column("raw").to_pylist() == expected


def test_an_ingest_does_not_import_pandas(tmp_path):
    """pyarrow imports pandas (~0.17 s) in any pa.array call, to ask whether its argument is
    a pandas object: an ingest builds its Arrow arrays without it (collectors/arrow_arrays.py),
    on either path, in Python's canonical form of a value, and for invalid UTF-8."""
    lines = [
        orjson.dumps(event()),
        orjson.dumps(event(new=[1.5, {"b": 1, "a": 2}])),  # canonicalised in Python
        b"not json",
        b'{"entity": "\xff"}',
    ]
    code = (
        "import sys, duckdb\n"
        "from collectors.ingest import load_lines\n"
        "from collectors.store import migrate\n"
        "con = duckdb.connect()\n"
        "migrate(con)\n"
        f"summary = load_lines(con, {lines!r}, 'x')\n"
        # An invalid line keeps the rest of its batch on the fast path.
        "assert (summary.fast, summary.rejected) == (2, 2), summary\n"
        "print(con.execute('SELECT new FROM events ORDER BY seq').fetchall()[1][0])\n"
        "print('pandas' in sys.modules)\n"
    )
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['[1.5,{"a":2,"b":1}]', "False"]


def test_refused_writes_are_noted_on_either_path_and_only_for_stored_rows(con):
    """A write a compare-and-swap refused (attrs.rejected true) is noted in refused_events
    as it is stored, on the fast path and the exact path (a leading space), and never for a
    duplicate deleted after the fast path stored it: applied_events leaves out exactly the
    refused rows, and a re-ingest that stores nothing notes nothing."""
    refused = orjson.dumps(event(entity="e-fast", attrs={"rejected": True}))
    lines = [
        refused,
        b" " + orjson.dumps(event(entity="e-exact", attrs={"rejected": "true"})),
        orjson.dumps(event(entity="e-applied", attrs={"rejected": False})),
        refused,  # a duplicate inside the batch: stored by the fast path, then deleted
    ]
    for _ in range(2):
        load_lines(con, lines, "refused")
        noted = con.execute("SELECT seq FROM refused_events ORDER BY seq").fetchall()
        assert noted == con.execute(
            "SELECT seq FROM events WHERE entity <> 'e-applied' ORDER BY seq").fetchall()
        assert len(noted) == 2
        assert con.execute("SELECT entity FROM applied_events").fetchall() == [("e-applied",)]
