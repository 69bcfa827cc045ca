"""The in-process DuckDB sink: batched through the bulk ingest's path, failing open."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from decimal import Decimal

import duckdb
import pytest

import audit
from collectors.duckdb_sink import DuckDBSink
from collectors.store import open_store

pytestmark = pytest.mark.usefixtures("fresh_audit")


def test_tracked_writes_land_in_the_store_canonicalised_like_ingest(tmp_path):
    con = open_store(tmp_path / "a.duckdb")
    sink = DuckDBSink(con, batch_size=50)
    audit.configure(sink=sink, otel=False)

    @audit.tracked(entity_type="block")
    def apply(doc, i):
        doc["content"] = f"c{i}"
        doc["payload"] = {"b": i, "a": 2.0}

    doc = {"id": "block-A", "_meta": {"version": 0}}  # versioned, as a store hands it out
    with audit.writer("workflow", actor="e-1"):
        for i in range(120):
            apply(doc, i)
    assert sink.flush()
    rows = con.execute(
        "SELECT count(*), count(DISTINCT write_id), max(version), min(writer), min(source) "
        "FROM events"
    ).fetchall()
    assert rows[0][:4] == (240, 120, 120, "workflow")
    assert rows[0][4].startswith("sink:")
    (new,) = con.execute(
        "SELECT new FROM events WHERE field = 'payload' AND version = 1").fetchall()[0]
    assert new == '{"a":2,"b":0}'  # sorted keys, 2.0 -> 2: the ingest's canonical text
    assert audit.stats()["sinks"]["duckdb"]["sent"] == 240
    sink.close()
    con.close()


def test_integers_beyond_64_bits_are_stored_exactly_not_dropped(tmp_path):
    """orjson writes no integer beyond 64 bits: such a value once cost the event (dropped,
    counted), and a redacted one too. Now each is written, and stored, as its digits."""
    con = open_store(tmp_path / "a.duckdb")
    sink = DuckDBSink(con)
    audit.configure(sink=sink, otel=False, redact=("secret",))
    big = 10**21

    @audit.tracked(entity_type="block")
    def apply(doc, update):
        doc.update(update)

    doc = {"id": "block-A", "n": 1, "_meta": {"version": 0}}
    with audit.writer("workflow"):
        apply(doc, {"n": big})
        apply(doc, {"n": [2**70, 3], "secret": -big})
        audit.record("block-B", {"tags": set()}, {"tags": {big}})  # a set: json_default's way
    assert sink.flush()
    assert audit.stats()["sinks"]["duckdb"]["dropped"] == 0
    rows = con.execute("SELECT entity, field, old, new FROM events ORDER BY entity, version, field"
                       ).fetchall()
    assert [r for r in rows if r[1] != "secret"] == [
        ("block-A", "n", "1", str(big)), ("block-A", "n", str(big), f"[{2**70},3]"),
        ("block-B", "tags", "[]", f"[{big}]")]
    (secret,) = [json.loads(r[3]) for r in rows if r[1] == "secret"]
    assert secret["len"] == len(str(-big))  # hashed from its digits
    sink.close()
    con.close()


def test_decimals_are_stored_as_the_numbers_they_are(tmp_path):
    """PostgreSQL's numeric comes to Python as Decimal; it was written as a string
    ("12.50"), where the trigger capture of the same column writes the number."""
    con = open_store(tmp_path / "a.duckdb")
    sink = DuckDBSink(con)
    audit.configure(sink=sink, otel=False)
    with audit.writer("billing"):
        audit.record("order-1", {"total": Decimal("12.50"), "fee": Decimal("NaN")},
                     {"total": Decimal("13.00"), "fee": Decimal("0.5"),
                      "huge": Decimal("1e400")})
    assert sink.flush()
    rows = con.execute("SELECT field, old, new FROM events ORDER BY field").fetchall()
    assert rows == [("fee", "null", "0.5"), ("huge", None, '"1E+400"'), ("total", "12.5", "13")]
    sink.close()
    con.close()


def test_a_failing_store_drops_counts_and_the_service_goes_on(tmp_path):
    con = open_store(tmp_path / "a.duckdb")
    sink = DuckDBSink(con)
    audit.configure(sink=sink, otel=False)
    con.close()  # the database went away under the sink

    @audit.tracked
    def edit(doc, i):
        doc["n"] = i
        return "ok"

    doc = {"id": "x"}
    assert [edit(doc, i) for i in range(3)] == ["ok"] * 3
    sink.flush()
    stats = audit.stats()["sinks"]["duckdb"]
    assert stats["dropped"] == 3 and stats["sent"] == 0
    assert "ConnectionException" in stats["reasons"]


def test_a_full_queue_drops_instead_of_blocking(tmp_path):
    sink = DuckDBSink(tmp_path / "a.duckdb", max_queue=3, batch_size=1000, flush_interval_s=60)
    for i in range(10):
        sink.write_line(b'{"ts":"2025-01-01T00:00:00Z","entity":"e","field":"f","writer":"w",'
                        b'"change":"added","new":%d}' % i)
    assert audit.stats()["sinks"]["duckdb"]["reasons"] == {"queue full": 7}
    sink.close()
    con = duckdb.connect(str(tmp_path / "a.duckdb"))
    assert con.execute("SELECT count(*) FROM events").fetchall() == [(3,)]
    con.close()


def test_queued_events_are_stored_at_exit(tmp_path):
    db = tmp_path / "exit.duckdb"
    script = textwrap.dedent(f"""
        import audit
        from collectors.duckdb_sink import DuckDBSink
        audit.configure(sink=DuckDBSink({str(db)!r}, flush_interval_s=60), otel=False)
        for i in range(25):
            audit.record("e", {{"n": i}}, {{"n": i + 1}})
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    con = duckdb.connect(str(db))
    assert con.execute("SELECT count(*) FROM events").fetchall() == [(25,)]
    con.close()
