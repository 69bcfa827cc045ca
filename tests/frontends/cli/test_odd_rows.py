"""Every reader survives any row already in the store: values JSON cannot carry (NaN,
-Infinity, 1e400) and times outside the years Python holds (year 0, year 1, year 9999).
Such rows predate the ingest's checks or come from other writers; they are inserted here
with SQL, as they would sit in an old store.

No command may end in a traceback, and none may exit 1 by accident: for `audit check`, 1
means "findings".
"""

from __future__ import annotations

import json
import re

import pytest
from cli_support import run

from collectors.ingest import load_lines
from collectors.store import open_store

BASE = {"event": "field.transition", "entity": "block-A", "field": "content"}
ODD = [  # seq, event_id, ts, entity, old, new, writer, version, base_version
    (100, "n1", "2025-01-31 12:00:02+00", "block-A", '"c"', "NaN", "sync", 4, 1),
    (101, "n2", "2025-01-31 12:00:03+00", "block-A", "NaN", "-Infinity", "workflow", 5, 4),
    (102, "n3", "2025-01-31 12:00:04+00", "block-A", "-Infinity", "1e400", "user", 6, 4),
    (103, "n4", "0001-01-01 00:00:00+00", "block-A", '"z"', '"q"', "sync", None, None),
    (104, "n5", "9999-12-31 23:59:59+00", "block-A", '"q"', '"w"', "sync", None, None),
    (105, "n6", "0000-01-01 00:00:00+00", "block-B", '"q"', '"w"', "sync", None, None),
    (106, "n7", "0000-01-01 00:00:01+00", "block-B", '"q"', '"x"', "user", None, None),
]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("odd") / "odd.duckdb"
    con = open_store(path)
    try:
        load_lines(con, [
            json.dumps({**BASE, "event_id": "e1", "ts": "2025-01-31T12:00:00Z", "old": "a",
                        "new": "b", "writer": "workflow", "version": 2, "base_version": 1}),
            json.dumps({**BASE, "event_id": "e2", "ts": "2025-01-31T12:00:01Z", "old": "a",
                        "new": "c", "writer": "user", "version": 3, "base_version": 1}),
        ], "test")
        con.executemany(
            "INSERT INTO events (seq, event_id, ts, entity, field, change, old, new, writer, "
            "version, base_version, source) "
            "VALUES (?, ?, ?::TIMESTAMPTZ, ?, 'content', 'changed', ?, ?, ?, ?, ?, 'old')",
            ODD,
        )
    finally:
        con.close()
    return path


COMMANDS = {
    "check": (["check"], 1),
    "check json": (["check", "-f", "json"], 1),
    "check csv": (["check", "-f", "csv"], 1),
    "timeline A": (["timeline", "block-A"], 0),
    "timeline B": (["timeline", "block-B"], 0),
    "replay": (["replay", "block-A", "--at", "2026-01-01T00:00:00Z"], 0),
    "owners": (["owners"], 0),
    "report": (["report"], 0),
    "report html": (["report", "--html", "{tmp}/r.html"], 0),
    "alert dry run": (["alert", "--dry-run"], 0),
    "stats": (["stats"], 0),
}


@pytest.mark.parametrize("name", COMMANDS)
def test_every_reader_survives_odd_rows(db, name, tmp_path):
    """No traceback anywhere, and the status of success, not 2, nor 1 by accident."""
    argv, status = COMMANDS[name]
    result = run(*[a.format(tmp=tmp_path) for a in argv], "--db", db, columns=120)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == status, result.stderr


def test_check_names_the_odd_values(db):
    findings = json.loads(run("check", "--db", db, "-f", "json").stdout)
    text = run("check", "--db", db, columns=200).stdout
    assert any(f["entity"] == "block-B" for f in findings)
    assert re.search(r"NaN|nan", text) and re.search(r"Infinity|inf", text)


def test_the_report_shows_the_odd_values(db, tmp_path):
    assert run("report", "--db", db, "--html", tmp_path / "r.html").returncode == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "NaN" in page and "-Infinity" in page and "1e400" in page
    terminal = run("report", "--db", db, columns=120).stdout
    assert "NaN" in terminal and "block-B" in terminal


def test_stats_shows_the_whole_time_range(db):
    result = run("stats", "--db", db, "--json")
    stats = json.loads(result.stdout)
    assert stats["events"] == 9
    assert stats["first_ts"] == "0001-01-01 (BC) 00:00:00+00"
    assert stats["last_ts"].startswith("9999-12-31T23:59:59")
