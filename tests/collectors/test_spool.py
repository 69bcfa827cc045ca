"""The spool: per-process JSONL files, sealed by rename, loaded by `audit ingest` exactly once."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import orjson
import pytest
from instrument_support import spool_writer

import audit
from collectors.ingest import ingest
from collectors.sources import discover
from collectors.spool import SpoolSink, seal_orphans
from collectors.store import open_store

pytestmark = pytest.mark.usefixtures("fresh_audit")


def _count(db: Path, sql: str = "SELECT count(*), count(DISTINCT event_id) FROM events"):
    con = open_store(db)
    try:
        return con.execute(sql).fetchall()[0]
    finally:
        con.close()


def _ingest(directory: Path, db: Path):
    con = open_store(db)
    try:
        return ingest(con, [str(directory)], notify=lambda _msg: None)
    finally:
        con.close()


def test_files_rotate_by_size_and_only_sealed_files_are_ingested(tmp_path):
    spool = SpoolSink(tmp_path / "spool", max_bytes=2000, buffer_bytes=0)
    audit.configure(sink=spool, otel=False)
    n = 43
    for i in range(n):
        audit.record("e", {"n": i}, {"n": i + 1})
    assert spool.sealed, "size rotation sealed at least one file"
    assert len(list((tmp_path / "spool").glob("*.jsonl.part"))) <= 1  # the one being written
    found = discover([str(tmp_path / "spool")])
    assert sorted(found) == sorted(str(p) for p in spool.sealed)
    for path in spool.sealed:
        assert path.stat().st_size < 2000 + 400
        for line in path.read_bytes().splitlines():
            orjson.loads(line)  # whole lines only

    summary = _ingest(tmp_path / "spool", tmp_path / "a.duckdb")
    sealed_events = sum(len(p.read_bytes().splitlines()) for p in spool.sealed)
    assert summary.ingested == sealed_events
    spool.rotate()
    summary = _ingest(tmp_path / "spool", tmp_path / "a.duckdb")
    assert summary.ingested == n - sealed_events  # only the new file
    assert _count(tmp_path / "a.duckdb") == (n, n)
    assert audit.stats()["sinks"]["spool"]["sent"] == n


def test_buffered_events_reach_the_file_on_flush_and_tick(tmp_path):
    spool = SpoolSink(tmp_path, max_age_s=3600)
    spool.write_line(b'{"a":1}')
    assert list(tmp_path.iterdir()) == []  # still in memory
    spool.flush()
    (part,) = tmp_path.glob("*.part")
    assert part.read_bytes() == b'{"a":1}\n'
    spool.max_age_s = 0  # due now
    spool.write_line(b'{"a":2}')
    spool.tick()
    (sealed,) = tmp_path.glob("*.jsonl")
    assert sealed.read_bytes() == b'{"a":1}\n{"a":2}\n'
    spool.close()
    spool.write_line(b'{"a":3}')
    assert audit.stats()["sinks"]["spool"]["reasons"] == {"closed": 1}


def test_nothing_lost_or_doubled_across_forked_processes(tmp_path):
    """The parent has events buffered when it forks: children must not write them again.
    Children use the sink they inherited; each seals its own files when it exits."""
    directory = tmp_path / "spool"
    spool = SpoolSink(directory, max_bytes=32 * 1024)
    audit.configure(sink=spool, otel=False)
    spool_writer(str(directory), "parent-before", 7, configure=False)  # buffered, unwritten
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=spool_writer, args=(str(directory), f"w{i}", 150, False))
        for i in range(4)
    ]
    for p in procs:
        p.start()
    spool_writer(str(directory), "parent-after", 5, configure=False)
    for p in procs:
        p.join()
        assert p.exitcode == 0
    spool.close()

    assert not list(directory.glob("*.part"))
    pids = {p.name.split(".")[1] for p in directory.glob("*.jsonl")}
    assert len(pids) == 5  # the parent and four children, each its own files
    expected = 4 * 150 * 2 + (7 + 5) * 2  # two fields per write
    db = tmp_path / "s.duckdb"
    cli = subprocess.run(
        [sys.executable, "-m", "frontends.cli", "ingest", str(directory), "--db", str(db)],
        capture_output=True, text=True,
    )
    assert cli.returncode == 0, cli.stderr
    assert _count(db) == (expected, expected)
    assert _count(db, "SELECT count(*), 0 FROM rejected_events") == (0, 0)
    per_writer = dict(_rows(tmp_path / "s.duckdb",
                            "SELECT writer, count(*) FROM events GROUP BY writer"))
    assert per_writer == {"w0": 300, "w1": 300, "w2": 300, "w3": 300,
                          "parent-before": 14, "parent-after": 10}
    assert _ingest(directory, tmp_path / "s.duckdb").ingested == 0  # idempotent


def test_threads_writing_at_once_never_interleave_lines(tmp_path):
    spool = SpoolSink(tmp_path / "spool", max_bytes=16 * 1024, buffer_bytes=512)
    audit.configure(sink=spool, otel=False)
    threads = [
        threading.Thread(target=spool_writer, args=(str(tmp_path), f"t{i}", 200, False))
        for i in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spool.close()
    lines = [line for p in spool.sealed for line in p.read_bytes().splitlines()]
    assert len(lines) == 6 * 200 * 2
    events = [orjson.loads(line) for line in lines]  # each one whole
    assert len({e["event_id"] for e in events}) == len(events)
    # per writer, versions come out in order: one thread's writes are appended in order
    for i in range(6):
        versions = [e["version"] for e in events if e["writer"] == f"t{i}"]
        assert versions == sorted(versions) and len(versions) == 400


def test_spawned_processes_each_configure_their_own_spool(tmp_path):
    directory = tmp_path / "spool"
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=spool_writer, args=(str(directory), f"s{i}", 100, True))
        for i in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    summary = _ingest(directory, tmp_path / "s.duckdb")
    assert (summary.ingested, summary.duplicates) == (400, 0)


def _rows(db: Path, sql: str):
    con = open_store(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_killed_process_leaves_a_part_file_that_the_next_spool_seals(tmp_path):
    directory = tmp_path / "spool"
    script = textwrap.dedent(f"""
        import os
        from collectors.spool import SpoolSink
        s = SpoolSink({str(directory)!r})
        for i in range(3):
            s.write_line(b'{{"event_id": "e%d"}}' % i)
        s.flush()
        os._exit(0)  # killed: no atexit, no sealing
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    (part,) = directory.glob("*.jsonl.part")
    with open(part, "ab") as f:
        f.write(b'{"event_id": "half')  # the line the process was writing when it died
    assert discover([str(directory)]) == []

    SpoolSink(directory)  # starting a spool there seals orphans of dead processes
    (sealed,) = directory.glob("*.jsonl")
    assert sealed.read_bytes().splitlines() == [
        b'{"event_id": "e0"}', b'{"event_id": "e1"}', b'{"event_id": "e2"}']
    assert seal_orphans(directory) == []


def test_a_live_processs_part_file_is_left_alone(tmp_path):
    spool = SpoolSink(tmp_path)
    spool.write_line(b"{}")
    spool.flush()
    assert seal_orphans(tmp_path) == []
    assert len(list(tmp_path.glob("*.part"))) == 1


def test_a_spool_that_cannot_write_drops_counts_and_the_service_goes_on(tmp_path, caplog):
    directory = tmp_path / "spool"
    spool = SpoolSink(directory, buffer_bytes=0)
    audit.configure(sink=spool, otel=False)
    directory.rmdir()  # the disk went away

    @audit.tracked
    def edit(doc, i):
        doc["n"] = i
        return i

    doc = {"id": "x"}
    assert [edit(doc, i) for i in range(4)] == [0, 1, 2, 3]
    stats = audit.stats()["sinks"]["spool"]
    assert stats["dropped"] == 4 and stats["sent"] == 0
    assert stats["reasons"] == {"FileNotFoundError": 4}
    assert sum("spool" in r.getMessage() for r in caplog.records) == 1


def test_events_written_at_exit_are_sealed_by_atexit(tmp_path):
    directory = tmp_path / "spool"
    script = textwrap.dedent(f"""
        import audit
        from collectors.spool import SpoolSink
        audit.configure(sink=SpoolSink({str(directory)!r}), otel=False)
        for i in range(10):
            audit.record("e", {{"n": i}}, {{"n": i + 1}})
    """)
    subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ})
    (sealed,) = directory.glob("*.jsonl")
    assert len(sealed.read_bytes().splitlines()) == 10


@pytest.mark.parametrize("bad", [0, -1])
def test_max_bytes_smaller_than_a_line_still_writes_whole_lines(tmp_path, bad):
    spool = SpoolSink(tmp_path, max_bytes=bad, buffer_bytes=0)
    for i in range(3):
        spool.write_line(b'{"i":%d}' % i)
    assert [p.read_bytes() for p in sorted(spool.sealed)] == [
        b'{"i":0}\n', b'{"i":1}\n', b'{"i":2}\n']
