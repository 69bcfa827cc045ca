"""The store: migrations from older schemas, refusing what it cannot read, one writer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from audit.errors import AuditError
from collectors.store import MIGRATIONS, SCHEMA_VERSION, open_store, schema_version


def make_v1_store(path: Path) -> None:
    """A store as the first release wrote it: migration 1 only, with an event in it."""
    con = duckdb.connect(str(path))
    con.execute(MIGRATIONS[0][1])
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute(
        "INSERT INTO events (seq, event_id, ts, entity, field, change, new, writer) "
        "VALUES (1, 'e-1', '2026-01-01 00:00:00+00', 'block-A', 'content', 'added', "
        "'\"x\"', 'user')"
    )
    con.close()


def test_a_previous_schema_version_is_migrated_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.duckdb"
    make_v1_store(path)
    con = open_store(path)
    assert schema_version(con) == SCHEMA_VERSION
    assert con.execute("SELECT event_id FROM events").fetchall() == [("e-1",)]
    assert con.execute("SELECT count(*) FROM sent_alerts").fetchall() == [(0,)]
    con.close()


def test_a_reader_of_an_older_store_gets_it_migrated(tmp_path):
    path = tmp_path / "old.duckdb"
    make_v1_store(path)
    con = open_store(path, read_only=True)
    assert schema_version(con) == SCHEMA_VERSION
    con.close()


def test_a_newer_store_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "new.duckdb"
    open_store(path).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(AuditError, match="schema version 99, newer than"):
        open_store(path)


def test_a_foreign_database_is_refused(tmp_path):
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.close()
    with pytest.raises(AuditError, match="not a conflict-audit store"):
        open_store(path)


def test_a_missing_store_is_an_error_for_readers(tmp_path):
    with pytest.raises(AuditError, match="no store at"):
        open_store(tmp_path / "nope.duckdb", read_only=True)


def test_two_ingest_processes_on_one_store_lose_and_double_nothing(tmp_path):
    """DuckDB allows one process per file: the second `audit ingest` waits for the first."""
    files = []
    for k in range(2):
        path = tmp_path / f"part{k}.jsonl"
        with open(path, "w") as f:
            for i in range(20_000):
                f.write(
                    json.dumps(
                        {
                            "ts": "2026-01-01T00:00:00Z",
                            "entity": f"e{i % 100}",
                            "field": "n",
                            "old": i,
                            "new": i + 1,
                            "writer": f"w{k}",
                            "event_id": f"{k}-{i}",
                        }
                    )
                    + "\n"
                )
        files.append(path)
    shared = tmp_path / "shared.jsonl"
    shared.write_text(files[0].read_text())  # both processes also load this overlapping copy
    db = tmp_path / "store.duckdb"
    audit = [sys.executable, "-m", "frontends.cli.__main__"]
    procs = [
        subprocess.Popen(
            [*audit, "ingest", str(files[0]), str(shared), "--db", str(db), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
        subprocess.Popen(
            [*audit, "ingest", str(files[1]), str(shared), "--db", str(db), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    counts = [json.loads(out) for out, _ in results]
    assert sum(c["ingested"] for c in counts) == 40_000
    con = duckdb.connect(str(db), read_only=True)
    total, distinct = con.execute(
        "SELECT count(*), count(DISTINCT event_id) FROM events"
    ).fetchall()[0]
    con.close()
    assert total == distinct == 40_000
