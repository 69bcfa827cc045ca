"""The store: migrations from older schemas, refusing what it cannot read, one writer."""

from __future__ import annotations

import json
import sqlite3
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


def test_refused_writes_of_an_older_store_stay_out_of_applied_events(tmp_path):
    # Migration 5 notes the refused writes (attrs.rejected true, JSON or text) that a
    # store of schema 4 already holds; applied_events leaves them out, as before.
    path = tmp_path / "v4.duckdb"
    con = duckdb.connect(str(path))
    for _, ddl in MIGRATIONS[:4]:
        con.execute(ddl)
    con.execute("INSERT INTO meta VALUES ('schema_version', '4')")
    for seq, attrs in [(1, None), (2, '{"rejected": true}'), (3, '{"rejected": "true"}'),
                       (4, '{"rejected": false}'), (5, '{"service.name": "engine"}')]:
        con.execute(
            "INSERT INTO events (seq, event_id, ts, entity, field, change, new, writer, attrs) "
            "VALUES (?, ?, '2026-01-01 00:00:00+00', 'block-A', 'content', 'changed', "
            "'\"x\"', 'user', ?)", [seq, f"e-{seq}", attrs])
    con.close()
    con = open_store(path, read_only=True)
    assert con.execute("SELECT seq FROM applied_events ORDER BY seq").fetchall() == [
        (1,), (4,), (5,)]
    assert [d[0] for d in con.execute("SELECT * FROM applied_events").description] == [
        d[0] for d in con.execute("SELECT * FROM events").description]
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


def sqlite_file(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    return path


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (sqlite_file, "it is a SQLite database, not a DuckDB database"),
        (lambda p: p.write_bytes(b"PAR1" + bytes(40)),
         "it is a Parquet file, not a DuckDB database"),
        (lambda p: p.write_bytes(b""), "it is an empty file, not a DuckDB database"),
        (lambda p: p.write_text("this is not a database"), "it is not a DuckDB database"),
        (lambda p: p.mkdir(), "it is a directory"),
    ],
)
def test_a_foreign_file_is_refused_by_its_first_bytes(tmp_path, make, why):
    path = tmp_path / "store.duckdb"
    make(path)
    before = path.read_bytes() if path.is_file() else None
    for read_only in (True, False):
        with pytest.raises(AuditError) as raised:
            open_store(path, read_only=read_only)
        assert str(raised.value) == f"cannot open {path}: {why}"
    assert (path.read_bytes() if path.is_file() else None) == before  # left as it was


def test_no_connection_installs_or_loads_an_extension_by_itself(tmp_path):
    con = open_store(tmp_path / "store.duckdb")
    try:
        settings = dict(con.execute(
            "SELECT name, value FROM duckdb_settings() "
            "WHERE name IN ('autoinstall_known_extensions', 'autoload_known_extensions')"
        ).fetchall())
        assert settings == {"autoinstall_known_extensions": "false",
                            "autoload_known_extensions": "false"}
        # What a SQLite file made DuckDB do: fetch the extension that reads it. Now an error.
        with pytest.raises(duckdb.Error) as raised:
            con.execute(f"ATTACH '{sqlite_file(tmp_path / 'x.db')}' AS x (TYPE sqlite)")
        assert "download" not in str(raised.value).lower()
    finally:
        con.close()


def test_every_connection_holds_a_bounded_share_of_memory(tmp_path, monkeypatch):
    """The detectors' sort under DuckDB's own default (80 % of RAM) let a check of 100M
    events take 19.9 GB; `audit alert` runs it on a writing connection (collectors/store.py,
    MEMORY_LIMIT). What a check does under the limit: tests/queries/test_memory_limit.py."""
    from cli_support import run

    path = tmp_path / "a.duckdb"
    make_v1_store(path)
    open_store(path).close()

    def limit(con: duckdb.DuckDBPyConnection) -> str:
        [(value,)] = con.execute("SELECT current_setting('memory_limit')").fetchall()
        return value

    def duckdb_reads(setting: str | None) -> str:
        """What DuckDB makes of a memory limit (of its default: None) on this machine,
        whose memory (or cgroup) it measures itself."""
        with duckdb.connect(config={} if setting is None else {"memory_limit": setting}) as c:
            return limit(c)

    monkeypatch.delenv("AUDIT_MEMORY_LIMIT", raising=False)
    assert duckdb_reads("20%") != duckdb_reads(None)
    with open_store(path, read_only=True) as con:
        assert limit(con) == duckdb_reads("20%")
    with open_store(path) as con:  # a writer: audit alert runs the detectors on one
        assert limit(con) == duckdb_reads("20%")
    monkeypatch.setenv("AUDIT_MEMORY_LIMIT", "300MB")
    for read_only in (True, False):
        with open_store(path, read_only=read_only) as con:
            assert limit(con) == duckdb_reads("300MB") == "286.1 MiB"
    bad = run("check", "--db", path, env={"AUDIT_MEMORY_LIMIT": "lots"})
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "error: AUDIT_MEMORY_LIMIT='lots': Parser Error: Memory must have a number (e.g. 1GB)"]
