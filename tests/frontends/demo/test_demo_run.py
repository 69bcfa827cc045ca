"""The demo's workload at a small size with a fixed seed, audited end to end.

Threads make the exact interleaving vary from run to run; what must not vary is that the
audit agrees with the ground truth exactly, that the unsafe run has the anomalies the demo
is about, and that the fix removes them.
"""

from __future__ import annotations

import duckdb
import pytest

from audit.config import Config
from audit.errors import AuditError
from frontends.demo.pipeline import DEMO_MARK, DemoOptions, prepare, prepare_db, run_demo
from frontends.demo.simulation import Workload

DATA_LOSS = ("lost_update", "version_conflict", "stale_overwrite")


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    where = tmp_path_factory.mktemp("demo")
    options = DemoOptions(
        workload=Workload(seed=3, duration=1.0, blocks=4, writers=1),
        db=where / "demo.duckdb", config=Config(), workdir=where / "work",
    )
    return run_demo(options)


def test_events_went_through_the_spool(result):
    work = result.options.workdir
    for run in result.runs:
        sealed = list((work / run.mode / "spool").glob("*.jsonl"))
        assert sealed and not list((work / run.mode / "spool").glob("*.part"))
        lines = sum(len(path.read_bytes().splitlines()) for path in sealed)
        assert lines == run.ingested
        assert len(list((work / run.mode / "blocks").glob("block-*.json"))) == 4


def test_the_audit_matches_the_ground_truth_exactly_in_both_runs(result):
    for run in result.runs:
        for name, s in run.scores.items():
            assert s.false_positives == [], (run.mode, name, s.false_positives[:2])
            assert s.missed == [], (run.mode, name, s.missed[:2])
            assert s.found == s.truth == s.true_positives


def test_the_unsafe_run_loses_data_and_the_audit_finds_it(result):
    unsafe = result.run("unsafe")
    for name in DATA_LOSS:
        assert unsafe.scores[name].truth > 0, name
        assert unsafe.scores[name].recall == 1.0, name
    assert unsafe.scores["chain_break"].truth == 0  # every write went through the store
    assert unsafe.simulation.stats["transitions"] == unsafe.ingested
    assert unsafe.worst_entity in {f.entity for f in unsafe.findings if f.detector in DATA_LOSS}
    assert any(row["findings"] for row in unsafe.timeline)
    contested = [row["field"] for row in unsafe.owners if row["contested"]]
    assert "content" in contested and "indexingList.*.status" in contested


def test_the_fix_removes_every_lost_or_stale_write(result):
    safe = result.run("safe")
    for name in (*DATA_LOSS, "priority_inversion", "chain_break"):
        assert safe.found(name) == 0, name
    assert safe.simulation.stats["retries"] > 0  # the writers did collide, and retried
    assert safe.db.name == "demo-safe.duckdb"


def test_each_run_has_its_own_store_and_report(result):
    unsafe, safe = result.run("unsafe"), result.run("safe")
    for run in (unsafe, safe):
        con = duckdb.connect(str(run.db), read_only=True)
        try:
            (events,) = con.execute("SELECT count(*) FROM events").fetchone()
            (mark,) = con.execute("SELECT count(*) FROM meta WHERE key = ?",
                                  [DEMO_MARK]).fetchone()
        finally:
            con.close()
        assert (events, mark) == (run.ingested, 1)
        assert run.html is not None and run.html.read_text().startswith("<!DOCTYPE html>")


def test_a_store_the_demo_did_not_make_is_never_replaced(tmp_path):
    mine = tmp_path / "audit.duckdb"
    con = duckdb.connect(str(mine))
    con.execute("CREATE TABLE precious AS SELECT range AS x FROM range(3)")
    con.close()
    with pytest.raises(AuditError, match="not made by `audit demo`"):
        prepare_db(mine)
    con = duckdb.connect(str(mine), read_only=True)
    try:
        assert con.execute("SELECT list(x ORDER BY x) FROM precious").fetchall() == [([0, 1, 2],)]
    finally:
        con.close()
    junk = tmp_path / "junk.duckdb"
    junk.write_text("not a database")
    with pytest.raises(AuditError, match="cannot replace .*: it is not a DuckDB database"):
        prepare_db(junk)
    assert junk.read_text() == "not a database"
    (tmp_path / "work" / "unsafe").mkdir(parents=True)
    with pytest.raises(AuditError, match="refusing to clear"):
        prepare(DemoOptions(db=tmp_path / "new.duckdb", workdir=tmp_path / "work"))
