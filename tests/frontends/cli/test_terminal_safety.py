"""Strings from the store (entities, fields, writers, values) may hold terminal control
sequences: a screen clear, a window title, a bell, C1 controls. Wherever they reach a
terminal they are shown as visible escapes (``\\x1b``); JSON and CSV keep them exact."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from cli_support import run

ENTITY = "blk\x1b[2J"
FIELD = "f\x1b]0;owned\x07"
WRITER = "w\x9bx"  # a C1 control (CSI)
ACTOR = "a\x08\x7f"
VALUE = "\x1b[31mred\r\x00"
# What must never reach a terminal: C0 (but newline), DEL, C1, bidirectional overrides.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def line(event_id, ts, writer, old, new, **extra):
    return json.dumps({
        "event": "field.transition", "event_id": event_id, "ts": f"2026-03-01T12:00:0{ts}Z",
        "entity": ENTITY, "entity_type": "t\u202eype", "field": FIELD, "writer": writer,
        "old": old, "new": new, **extra,
    })


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("controls")
    log = folder / "events.jsonl"
    log.write_text("\n".join([
        line("e1", 1, "user", "a", "b", version=2, base_version=1),
        line("e2", 2, WRITER, "a", VALUE, version=3, base_version=1, actor=ACTOR),
    ]) + "\n")
    assert run("ingest", log, "--db", folder / "c.duckdb").returncode == 0
    return folder / "c.duckdb"


@pytest.mark.parametrize("command", [
    ["check"],
    ["timeline", ENTITY],
    ["replay", ENTITY, "--at", "2026-03-01T13:00:00Z"],
    ["owners"],
    ["report"],
    ["stats"],
    ["alert", "--dry-run"],
], ids=lambda c: c[0])
def test_controls_are_escaped_for_the_terminal(db, command):
    result = run(*command, "--db", db, columns=200)
    assert result.returncode in (0, 1), result.stderr
    printed = result.stdout + result.stderr
    assert not RAW.findall(printed)
    if command[0] not in ("stats",):
        assert r"\x1b" in printed  # shown, not hidden
    else:  # stats names writers and entity types, not entities
        assert r"w\x9bx" in printed and r"t\u202eype" in printed


def test_an_error_naming_a_value_is_escaped(db):
    result = run("timeline", "nope\x1b[2J", "--db", db)
    assert result.returncode == 2 and not RAW.findall(result.stderr)


def test_json_and_csv_keep_the_data_exact(db):
    findings = json.loads(run("check", "--db", db, "-f", "json").stdout)
    assert {f["entity"] for f in findings} == {ENTITY}
    assert {f["field"] for f in findings} == {FIELD}
    assert any(w["new"] == VALUE and w["actor"] == ACTOR
               for f in findings for w in f["witnesses"])
    rows = list(csv.DictReader(io.StringIO(run("check", "--db", db, "-f", "csv").stdout)))
    assert {r["entity"] for r in rows} == {ENTITY}
    assert any(WRITER in r["writers"] for r in rows)
    timeline = json.loads(run("timeline", ENTITY, "--db", db, "-f", "json").stdout)
    assert [r["writer"] for r in timeline] == ["user", WRITER]
