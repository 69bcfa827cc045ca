"""Inputs that used to stop the ingest or got stored in a form the readers could not take.

Each test reproduces one defect found by probing `audit ingest` as a new user would.
"""

from __future__ import annotations

import json

import pytest
from sample_event import event

from collectors.ingest import ingest, load_lines

HEAD = '{"event":"field.transition","ts":"2026-01-01T10:00:00Z","entity":"e","field":"f",'


def line(tail: str) -> str:
    """An event line whose last keys (old, new, writer, …) are written by hand."""
    return HEAD + tail + "}"


def rejects(con) -> list[tuple[int, str]]:
    return con.execute("SELECT line, reason FROM rejected_events ORDER BY line").fetchall()


@pytest.mark.parametrize("depth", [255, 300, 1023, 1024, 5000])
def test_a_value_nested_past_the_parsers_limits_is_rejected_and_the_ingest_goes_on(con, depth):
    deep = "[" * depth + "]" * depth
    lines = [
        json.dumps(event(new="before")),
        line(f'"writer":"w","old":1,"new":{deep}'),
        line(f'"writer":"w","old":{deep},"new":1'),
        json.dumps(event(new="after")),
    ]
    summary = load_lines(con, lines, "deep")
    assert (summary.ingested, summary.rejected) == (2, 2)
    assert rejects(con) == [
        (2, "nested deeper than 64 levels"),
        (3, "nested deeper than 64 levels"),
    ]


def test_a_deep_line_in_one_file_does_not_stop_the_files_after_it(con, tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "a.jsonl").write_text(
        line('"writer":"w","old":1,"new":' + "[" * 255 + "]" * 255) + "\n"
    )
    (folder / "b.jsonl").write_text(json.dumps(event()) + "\n")
    summary = ingest(con, [folder])
    assert (summary.files, summary.ingested, summary.rejected) == (2, 1, 1)
    again = ingest(con, [folder])  # nothing is left half-done for the next run
    assert (again.unchanged_files, again.ingested, again.rejected) == (2, 0, 0)


NOT_JSON = "holds NaN or Infinity, which JSON does not allow (RFC 8259)"
OUT_OF_RANGE = "holds a number out of range (beyond a 64-bit float)"
VALUES_READERS_CANNOT_TAKE = [
    ('"old":1,"new":NaN', f'"new" {NOT_JSON}'),
    ('"old":-Infinity,"new":1', f'"old" {NOT_JSON}'),
    ('"old":1,"new":Infinity', f'"new" {NOT_JSON}'),
    ('"old":1,"new":[1,NaN]', f'"new" {NOT_JSON}'),
    ('"old":1,"new":{"a":{"b":-Infinity}}', f'"new" {NOT_JSON}'),
    ('"old":1,"new":2,"attrs":{"x":NaN}', f'"attrs" {NOT_JSON}'),
    ('"old":1,"new":1e400', f'"new" {OUT_OF_RANGE}'),
    ('"old":-1E400,"new":1', f'"old" {OUT_OF_RANGE}'),
    ('"old":1,"new":[2.5,1e999]', f'"new" {OUT_OF_RANGE}'),
    ('"old":1,"new":1' + "0" * 400, f'"new" {OUT_OF_RANGE}'),
    ('"old":1,"new":{"n":-1' + "0" * 400 + "}", f'"new" {OUT_OF_RANGE}'),
    ('"old":1,"new":2,"attrs":{"x":[1e309]}', f'"attrs" {OUT_OF_RANGE}'),
]
VALUES_THAT_ARE_FINE = [
    '"old":"NaN","new":["Infinity",{"NaN":"-Infinity"}]',
    '"old":1e308,"new":-1.7976931348623157e308',
    '"old":1e-400,"new":18446744073709551616',
    '"old":1,"new":2,"attrs":{"note":"NaN or 1e400 as text","n":1e300}',
]


@pytest.mark.parametrize("lead", ["", " "], ids=["fast path", "exact path"])
def test_nan_infinity_and_numbers_beyond_a_double_are_rejected_with_a_reason(con, lead):
    """A leading space keeps a line off the fast path: both paths must refuse these."""
    bad = [lead + line(f'"writer":"w",{tail}') for tail, _ in VALUES_READERS_CANNOT_TAKE]
    fine = [lead + line(f'"writer":"w{n}",{tail}') for n, tail in enumerate(VALUES_THAT_ARE_FINE)]
    summary = load_lines(con, bad + fine, "values")
    assert rejects(con) == [(n, why) for n, (_, why) in enumerate(VALUES_READERS_CANNOT_TAKE, 1)]
    assert summary.ingested == len(fine)


OUTSIDE_YEARS = "is outside the years 0001-9999"
NOT_RFC3339 = "is not an RFC 3339 timestamp with offset"
TIMESTAMPS = [
    ("0000-01-01T00:00:00Z", OUTSIDE_YEARS),
    ("0001-01-01T00:30:00+01:00", OUTSIDE_YEARS),  # 0000-12-31 in UTC
    ("9999-12-31T23:59:59-01:00", OUTSIDE_YEARS),  # year 10000 in UTC
    ("2026-01-01T24:00:00Z", NOT_RFC3339),
    ("2026-01-01T10:00:00+24:00", NOT_RFC3339),
    ("2026-01-01T10:00:00+99:59", NOT_RFC3339),
    ("2026-01-01T10:00:00-05:60", NOT_RFC3339),
    ("2026-01-01T10:60:00Z", NOT_RFC3339),
    ("0001-01-01T00:00:00Z", None),
    ("9999-12-31T23:59:59.999999Z", None),
    ("2026-01-01T23:59:59+23:59", None),
]


@pytest.mark.parametrize("key", ["ts", "source_ts"])
@pytest.mark.parametrize("lead", ["", " "], ids=["fast path", "exact path"])
def test_timestamps_a_reader_cannot_represent_are_rejected(con, key, lead):
    lines = [
        lead + json.dumps(event(**{key: ts, "writer": f"w{n}"}))
        for n, (ts, _) in enumerate(TIMESTAMPS)
    ]
    summary = load_lines(con, lines, "ts")
    expected = [(n, f'"{key}" {why}') for n, (_, why) in enumerate(TIMESTAMPS, 1) if why]
    assert rejects(con) == expected
    assert summary.ingested == len(TIMESTAMPS) - len(expected)


DUPLICATED = [
    ('"writer":"w","old":1,"new":2,"entity":"b"', "entity"),  # HEAD gives entity "e"
    ('"writer":"w","old":1,"new":2,"version":1,"version":"x"', "version"),
    ('"writer":"w","writer":"w","old":1,"new":2', "writer"),  # the same value twice
    ('"writer":"w","old":1,"new":2,"\\u0065ntity":"b"', "entity"),  # escaped, still "entity"
    ('"writer":"w","actor":null,"actor":"x","old":1,"new":2', "actor"),
    ('"writer":"w","old":1,"new":2,"attrs":{},"attrs":{"a":1}', "attrs"),
    # Numbers the parser writes longer than given (1e10 as 10000000000.0): the length of
    # the line must not hide the second "version" from the fast path.
    ('"writer":"w","old":1e10,"new":1e10,"version":1,"version":2', "version"),
    (
        '"writer":"w","old":[1e10,1e10],"new":1,"attrs":{"a":1e10},"version":1,"version":2',
        "version",
    ),
]
NOT_DUPLICATED = [
    '"writer":"w","old":1,"new":2,"level":"info","level":"debug"',  # not a contract key
    '"writer":"w","old":{"entity":1},"new":2,"attrs":{"entity":"x","ts":1}',  # not top level
    '"writer":"w","old":1,"new":2,"note":"\\"entity\\": twice, \\"entity\\""',
]


@pytest.mark.parametrize("lead", ["", " "], ids=["fast path", "exact path"])
def test_a_contract_key_given_twice_is_rejected_naming_the_key(con, lead):
    bad = [lead + line(tail) for tail, _ in DUPLICATED]
    fine = [lead + line(tail.replace('"w"', f'"w{n}"')) for n, tail in enumerate(NOT_DUPLICATED)]
    summary = load_lines(con, bad + fine, "dup")
    assert rejects(con) == [
        (n, f'duplicate key "{key}"') for n, (_, key) in enumerate(DUPLICATED, 1)
    ]
    assert summary.ingested == len(fine)


def lines_of(con) -> list[tuple[int, str]]:
    return con.execute("SELECT line, new FROM events ORDER BY seq").fetchall()


def test_line_numbers_hold_after_a_last_line_was_taken_before_its_newline(con, tmp_path):
    path = tmp_path / "grow.jsonl"
    first = [json.dumps(event(new=f"v{i}")) for i in range(1, 6)]
    path.write_text("\n".join(first) + "\n" + json.dumps(event(new="v6")))  # no newline yet
    assert ingest(con, [path]).ingested == 6
    with open(path, "a") as f:  # the writer ends line 6, then writes lines 7 and 8
        f.write("\n" + json.dumps(event(new="v7")) + "\n" + json.dumps(event(new="v8")) + "\n")
    assert ingest(con, [path]).ingested == 2
    assert lines_of(con) == [(n, f'"v{n}"') for n in range(1, 9)]


def test_text_added_to_a_taken_last_line_belongs_to_that_line(con, tmp_path):
    path = tmp_path / "grow.jsonl"
    path.write_text(json.dumps(event(new="v1")) + "\n" + json.dumps(event(new="v2")))
    ingest(con, [path])
    with open(path, "a") as f:  # line 2 goes on: whatever follows is still line 2
        f.write(" trailing words\n" + json.dumps(event(new="v3")) + "\n")
    summary = ingest(con, [path])
    assert (summary.ingested, summary.rejected) == (1, 1)
    assert rejects(con) == [(2, "invalid JSON")]
    assert lines_of(con) == [(1, '"v1"'), (2, '"v2"'), (3, '"v3"')]


BOM = "\ufeff"


def test_a_byte_order_mark_before_the_first_line_is_not_part_of_it(con, tmp_path):
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_text(BOM + json.dumps(event(new="a")) + "\n" + json.dumps(event(new="b")) + "\n")
    array = tmp_path / "bom.json"
    array.write_text(BOM + json.dumps([event(new="c")]))
    summary = ingest(con, [jsonl, array])
    assert (summary.ingested, summary.rejected) == (3, 0)
    assert ingest(con, [jsonl, array]).unchanged_files == 2


def test_a_byte_order_mark_elsewhere_is_still_an_error(con, tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_text(json.dumps(event(new="a")) + "\n" + BOM + json.dumps(event(new="b")) + "\n")
    assert ingest(con, [path]).rejected == 1


def test_invalid_utf8_reasons_are_one_reason_with_the_byte_in_a_column(con, tmp_path):
    path = tmp_path / "bytes.jsonl"
    path.write_bytes(
        b'{"a": "\xff"}\n{"bb": "\xfe"}\n\xc3\n' + json.dumps(event()).encode() + b"\n"
    )
    summary = ingest(con, [path])
    assert summary.reasons == {"invalid UTF-8": 3}
    rows = con.execute("SELECT line, reason, at_byte FROM rejected_events ORDER BY line")
    assert rows.fetchall() == [
        (1, "invalid UTF-8", 7),
        (2, "invalid UTF-8", 8),
        (3, "invalid UTF-8", 0),
    ]


def test_entries_that_are_not_regular_files_are_named_and_counted(con, tmp_path):
    import os

    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "good.jsonl").write_text(json.dumps(event()) + "\n")
    os.mkfifo(folder / "pipe.jsonl")
    (folder / "gone.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    (folder / "null.log").symlink_to("/dev/null")
    (folder / "sub.json").mkdir()  # a folder with a matching name is searched, not skipped
    (folder / "sub.json" / "inner.jsonl").write_text(json.dumps(event(new="c")) + "\n")
    told: list[str] = []
    summary = ingest(con, [folder], notify=told.append)
    assert (summary.files, summary.ingested, summary.skipped_entries) == (2, 2, 3)
    assert sorted(told) == [
        f"skipped {folder / 'gone.jsonl'}: a broken symbolic link",
        f"skipped {folder / 'null.log'}: a device, not a regular file",
        f"skipped {folder / 'pipe.jsonl'}: a FIFO, not a regular file",
    ]


def test_an_unfinished_last_line_is_rejected_once_the_file_stopped_changing(con, tmp_path):
    import os
    import time

    path = tmp_path / "dead.jsonl"
    path.write_text(json.dumps(event(new="v1")) + "\n" + '{"event": "field.trans')
    told: list[str] = []
    summary = ingest(con, [path], notify=told.append, tail_grace_s=600)
    assert (summary.ingested, summary.pending_lines, summary.rejected) == (1, 1, 0)
    assert "incomplete" in told[0]
    old = time.time() - 601  # the writer died ten minutes ago
    os.utime(path, (old, old))
    told.clear()
    summary = ingest(con, [path], notify=told.append, tail_grace_s=600)
    assert (summary.pending_lines, summary.rejected) == (0, 1)
    assert rejects(con) == [(2, "unfinished last line (the file stopped changing before its end)")]
    assert told == []
    summary = ingest(con, [path], notify=told.append, tail_grace_s=600)
    assert (summary.unchanged_files, told) == (1, [])  # nothing left to warn about


def test_a_failure_of_the_store_names_the_file(con, tmp_path, monkeypatch):
    from audit.errors import AuditError
    from collectors import ingest as ingest_module

    monkeypatch.setattr(ingest_module, "_FAST_STRICT", "SELECT CAST($2 AS INTEGER) + $1")
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(event()) + "\n")
    with pytest.raises(AuditError, match=f"^{path}: not ingested: Conversion Error"):
        ingest(con, [path])
