"""The spool: per-process JSONL files, sealed by rename, loaded by `audit ingest` exactly once."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
from instrument_support import spool_writer
from sentry_receiver import SentryReceiver

import audit
from collectors.ingest import ingest
from collectors.sources import discover
from collectors.spool import SpoolSink, held_parts, seal_abandoned
from collectors.store import open_store
from frontends.cli import main as audit_main
from frontends.watch import watch

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
    assert summary.writing_files == 1  # the one being written: counted, left for later
    spool.rotate()
    summary = _ingest(tmp_path / "spool", tmp_path / "a.duckdb")
    assert summary.ingested == n - sealed_events  # only the new file
    assert summary.writing_files == 0
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


def _dead_writers_part(directory: Path, lines: int, *, tail: bytes = b"") -> Path:
    """A spool file as a killed writer leaves it: ``.part``, ``lines`` complete lines, then
    ``tail`` (the line it was in the middle of)."""
    script = textwrap.dedent(f"""
        import os
        from collectors.spool import SpoolSink
        s = SpoolSink({str(directory)!r})
        for i in range({lines}):
            s.write_line(b'{{"event_id": "e%d"}}' % i)
        s.flush()
        os._exit(0)  # killed: no atexit, no sealing
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    (part,) = directory.glob("*.jsonl.part")
    with open(part, "ab") as f:
        f.write(tail)
    return part


def test_a_killed_writers_part_file_is_sealed_by_the_next_spool(tmp_path):
    directory = tmp_path / "spool"
    _dead_writers_part(directory, 3, tail=b'{"event_id": "half')
    assert list(directory.glob("*.jsonl")) == []

    SpoolSink(directory)  # starting a spool there seals files of dead writers
    (sealed,) = directory.glob("*.jsonl")
    assert sealed.read_bytes().splitlines() == [
        b'{"event_id": "e0"}', b'{"event_id": "e1"}', b'{"event_id": "e2"}']
    assert seal_abandoned(directory) == []


def test_liveness_is_the_writers_lock_not_its_host_or_pid(tmp_path):
    """A restarted container (PID 1 again), a new hostname, a recycled PID: the name says
    nothing about whether its writer lives. Here it names another host and a live PID."""
    directory = tmp_path / "spool"
    part = _dead_writers_part(directory, 2)
    renamed = part.with_name(f"other-host.{os.getpid()}.{part.name.split('.', 2)[2]}")
    part.rename(renamed)

    (sealed,) = seal_abandoned(directory)
    assert sealed.name == renamed.name.removesuffix(".part")
    assert len(sealed.read_bytes().splitlines()) == 2


def test_a_live_writers_part_file_is_left_alone(tmp_path):
    spool = SpoolSink(tmp_path)
    spool.write_line(b"{}")
    spool.flush()
    assert seal_abandoned(tmp_path) == []
    assert held_parts(tmp_path) == list(tmp_path.glob("*.part"))
    assert spool.rotate() is not None  # its writer seals it as usual


def _recording_script(directory: Path, writes: int, then: str) -> str:
    """A process that records ``writes`` transitions into a spool, writes them to its file,
    then does ``then`` (Python, with ``os``, ``sys`` and ``spool`` at hand)."""
    return textwrap.dedent(f"""
        import os, sys
        import audit
        from collectors.spool import SpoolSink
        spool = SpoolSink({str(directory)!r})
        audit.configure(sink=spool, otel=False)
        for i in range({writes}):
            audit.record("block-A", {{"n": i}}, {{"n": i + 1}})
        spool.flush()
    """) + textwrap.dedent(then)


def test_a_writer_in_another_process_keeps_its_file_until_it_is_killed(tmp_path):
    """Ingest leaves a live process's file; once it is killed (-9), the next ingest takes
    every line that reached the disk, and the half line it was writing is cut off."""
    directory = tmp_path / "spool"
    script = _recording_script(directory, 20, """
        with open(spool._path, "ab") as f:
            f.write(b'{"event": "field.transition", "entity": "blo')  # dies mid-line
        print("written", flush=True)
        sys.stdin.read()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "written\n"
        db = tmp_path / "s.duckdb"
        assert _ingest(directory, db).ingested == 0
        assert len(held_parts(directory)) == 1
        proc.kill()
        proc.wait()
        summary = _ingest(directory, db)
        assert (summary.ingested, summary.rejected, summary.pending_lines) == (20, 0, 0)
        assert held_parts(directory) == []
    finally:
        proc.kill()
        proc.wait()


def test_the_watcher_seals_and_ingests_a_dead_writers_file(tmp_path):
    directory = tmp_path / "spool"
    script = _recording_script(directory, 5, "os._exit(0)  # killed: no atexit, no sealing")
    subprocess.run([sys.executable, "-c", script], check=True)
    cycles = []
    with SentryReceiver() as receiver:
        watch(directory, db=tmp_path / "w.duckdb", dsn=receiver.dsn, max_cycles=1,
              on_cycle=cycles.append)
    assert (cycles[0].files, cycles[0].ingested, cycles[0].error) == (1, 5, None)


def _audit(capsys, *args: str) -> tuple[int, str, str]:
    """The `audit` command in this process: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as done:
        audit_main(list(args))
    out, err = capsys.readouterr()
    return done.value.code, out, err


def test_audit_ingest_says_what_a_live_writer_still_holds(tmp_path, capsys):
    directory = tmp_path / "spool"
    spool = SpoolSink(directory, buffer_bytes=0)  # as `audit serve` writes: each event at once
    spool.write_line(b'{"ts": "2026-01-01T00:00:00Z", "entity": "e", "field": "n", '
                     b'"old": 1, "new": 2, "writer": "w"}')
    db = str(tmp_path / "a.duckdb")
    status, out, err = _audit(capsys, "ingest", str(directory), "--db", db)
    assert status == 0
    assert out.rstrip().endswith("0 rejected; 1 spool file(s) still being written")
    assert "read by a later ingest, once their writers seal them" in err
    spool.close()
    status, out, err = _audit(capsys, "ingest", str(directory), "--db", db)
    assert (status, err) == (0, "") and "1 ingested" in out and "still being" not in out


def test_audit_spool_seal(tmp_path, capsys):
    directory = tmp_path / "spool"
    _dead_writers_part(directory, 4, tail=b"{")
    live = SpoolSink(directory / "service-b")  # seals under its own folder only
    live.write_line(b"{}")
    live.flush()
    status, out, _ = _audit(capsys, "spool", "seal", str(directory), "--json")
    assert status == 0
    result = orjson.loads(out)
    assert [Path(p).stat().st_size for p in result["sealed"]] == [4 * 19]
    assert result["live"] == [str(live._path)]
    status, out, _ = _audit(capsys, "spool", "seal", str(directory))
    assert (status, out) == (0, "0 file(s) sealed; 1 still being written by live writers\n")
    live.close()


def test_audit_spool_seal_on_a_missing_folder_is_one_line_and_exit_2(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert _audit(capsys, "spool", "seal", str(missing)) == (
        2, "", f"error: no such spool folder: {missing}\n")


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


def test_write_durably_returns_once_its_lines_are_in_the_file(tmp_path):
    """The collector's way in: no buffering, whole lines, nothing lost or doubled by the
    rotations that happen between one thread's write and its fsync."""
    spool = SpoolSink(tmp_path, max_bytes=4000, fsync=True, name="serve")

    def client(c: int) -> None:
        for i in range(40):
            lines = b"".join(b'{"c":%d,"i":%d,"k":%d}\n' % (c, i, k) for k in range(5))
            spool.write_durably(lines, 5)
            with spool._lock:  # no seal renames a file while the folder is read
                on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir())
            assert lines in on_disk  # there when the call returns, sealed or not

    # Through futures: an assertion that fails in a plain thread does not fail the test.
    with ThreadPoolExecutor(4) as pool:
        for done in [pool.submit(client, c) for c in range(4)]:
            done.result()
    spool.close()
    lines = [orjson.loads(line) for p in tmp_path.glob("*.jsonl") for line in
             p.read_bytes().splitlines()]
    assert len(lines) == len({(e["c"], e["i"], e["k"]) for e in lines}) == 4 * 40 * 5
    assert len(spool.sealed) > 4
    assert audit.stats()["sinks"]["serve"]["sent"] == 800


def test_write_durably_raises_when_it_cannot_write(tmp_path):
    directory = tmp_path / "spool"
    spool = SpoolSink(directory)
    directory.rmdir()
    with pytest.raises(FileNotFoundError):
        spool.write_durably(b"{}\n", 1)
    assert audit.stats()["sinks"].get("spool", {}).get("dropped", 0) == 0  # refused, not lost
    spool.close()
    with pytest.raises(OSError, match="closed"):
        spool.write_durably(b"{}\n", 1)
