"""The demo's ground truth and its fix, on scripted interleavings (no threads, no timing).

The same scripted writes are also audited end to end (spool, ingest, detectors), and the
findings must be exactly the incidents the store recorded.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import audit
from audit.config import Config
from collectors.ingest import ingest
from collectors.spool import SpoolSink
from collectors.store import open_store
from frontends.demo.client import Client
from frontends.demo.scoring import score
from frontends.demo.simulation import Workload, plan_actors
from frontends.demo.truth import GroundTruth, Incident, Transition, leaves
from frontends.demo.workspace import BlockStore, template_block
from frontends.demo.writers import ExternalStorage
from queries.runner import check

BLOCK = "block-01"


@pytest.fixture
def spool(tmp_path):
    """Events of the test go to a spool, as in the demo; settings restored afterwards."""
    sink = SpoolSink(tmp_path / "spool")
    previous = audit.configure()
    audit.configure(sink=sink, field_stamps=True, otel=False, config=Config())
    yield sink
    sink.close()
    audit.configure(sink=list(previous.sinks), field_stamps=previous.field_stamps,
                    otel=previous.otel, config=previous.config,
                    processors=previous.processors)


def workspace(tmp_path: Path) -> tuple[BlockStore, GroundTruth]:
    truth = GroundTruth(config=Config())
    store = BlockStore(tmp_path / "blocks", truth.observe)
    store.create([template_block(BLOCK, 1)])
    return store, truth


def race(store: BlockStore, *, safe: bool) -> tuple[Client, Client]:
    """A lost update: both read version 1; the user renames the block, then
    the workflow saves its output from the copy it read before the rename."""
    t0 = time.time()
    user = Client(store, writer="user", actor="alice", safe=safe)
    workflow = Client(store, writer="workflow", actor="engine-1", safe=safe)
    mine, theirs = user.open(BLOCK), workflow.open(BLOCK)
    with audit.writer("user", actor="alice"):
        user.write(mine, {"label": "Renamed"}, source_ts=t0)
    with audit.writer("workflow", actor="engine-1"):
        workflow.write(theirs, {"content": "run 1: output"}, source_ts=t0 + 0.001)
    return user, workflow


def audited(tmp_path: Path, sink: SpoolSink, truth: GroundTruth):
    sink.close()
    con = open_store(tmp_path / "audit.duckdb")
    try:
        ingest(con, [str(sink.directory)])
        findings = check(con, config=Config())
    finally:
        con.close()
    return findings, score(findings, truth.incidents())


def test_leaves_are_contract_paths():
    doc = template_block(BLOCK, 1)
    flat = leaves({k: v for k, v in doc.items() if k != "_meta"})
    assert flat["indexingList.0.status"] == "pending"
    assert flat["label"] == "Section 1"
    assert not any(path.startswith("_meta") for path in flat)


def test_a_whole_document_save_from_a_stale_copy_is_every_anomaly_it_should_be(
    tmp_path, spool
):
    store, truth = workspace(tmp_path)
    race(store, safe=False)

    saved = store.read(BLOCK)
    assert saved["label"] == "Section 1"  # the rename is gone
    assert saved["content"] == "run 1: output"
    assert saved["_meta"]["version"] == 2  # both saves produced version 2
    pair = ("alice#1", "engine-1#1")
    assert set(truth.incidents()) == {
        Incident("version_conflict", BLOCK, "$", pair, "version 2"),
        Incident("lost_update", BLOCK, "label", pair, "rode along in a stale copy"),
        Incident("stale_overwrite", BLOCK, "label", pair, "reverted"),
        Incident("priority_inversion", BLOCK, "label", pair),
        Incident("oscillation", BLOCK, "label", pair, "2 changes"),
    }
    assert truth.clobbers() == 1

    findings, scores = audited(tmp_path, spool, truth)
    assert len(findings) == 5
    assert all(s.exact for s in scores.values()), {
        name: (s.false_positives, s.missed) for name, s in scores.items()
    }


def test_the_fix_retries_from_a_fresh_read_and_keeps_both_changes(tmp_path, spool):
    store, truth = workspace(tmp_path)
    _, workflow = race(store, safe=True)

    saved = store.read(BLOCK)
    assert (saved["label"], saved["content"]) == ("Renamed", "run 1: output")
    assert saved["_meta"]["version"] == 3
    assert workflow.stats.retries == 1
    assert truth.incidents() == []

    findings, scores = audited(tmp_path, spool, truth)
    assert findings == []
    assert all(s.exact for s in scores.values())


def test_an_older_read_saves_anyway_and_forks_the_stored_version(tmp_path, spool):
    store, truth = workspace(tmp_path)
    t0 = time.time()
    user = Client(store, writer="user", actor="alice", safe=False)
    late = Client(store, writer="polling_sync", actor="sync-1", safe=False)
    stale = late.open(BLOCK)  # version 1
    copy = user.open(BLOCK)
    with audit.writer("user", actor="alice"):
        user.write(copy, {"label": "A"}, source_ts=t0)  # version 2
        user.write(copy, {"label": "B"}, source_ts=t0 + 0.001)  # version 3
    with audit.writer("polling_sync", actor="sync-1"):
        late.write(stale, {"indexingList.0.status": "done"}, source_ts=t0 + 0.002)
    saved = store.read(BLOCK)
    # Versions never go backwards, so the late save claims version 3 too.
    assert (saved["_meta"]["version"], stale.version) == (3, 3)
    assert (saved["label"], saved["indexingList"][0]["status"]) == ("Section 1", "done")
    assert {(i.detector, i.write_ids) for i in truth.incidents()} == {
        ("version_conflict", ("alice#2", "sync-1#1")),
        ("lost_update", ("alice#2", "sync-1#1")),
        ("stale_overwrite", ("alice#2", "sync-1#1")),
        ("priority_inversion", ("alice#2", "sync-1#1")),
    }
    findings, scores = audited(tmp_path, spool, truth)
    assert all(s.exact for s in scores.values())


def test_a_copy_of_one_branch_of_a_fork_hides_what_it_overwrites(tmp_path, spool):
    """No rule on version numbers can see this one: the copy claims version 2, but the
    version 2 it overwrites is the other branch."""
    store, truth = workspace(tmp_path)
    t0 = time.time()
    user = Client(store, writer="user", actor="alice", safe=False)
    workflow = Client(store, writer="workflow", actor="engine-1", safe=False)
    poller = Client(store, writer="polling_sync", actor="sync-1", safe=False)
    mine, theirs = user.open(BLOCK), workflow.open(BLOCK)
    with audit.writer("user", actor="alice"):
        user.write(mine, {"label": "Renamed"}, source_ts=t0)  # v2, branch 1
    synced = poller.open(BLOCK)  # reads branch 1
    with audit.writer("workflow", actor="engine-1"):
        workflow.write(theirs, {"content": "output"}, source_ts=t0 + 0.001)  # v2, branch 2
    with audit.writer("polling_sync", actor="sync-1"):
        poller.write(synced, {"indexingList.0.status": "done"}, source_ts=t0 + 0.002)  # v3

    hidden = {(e1.field, e1.write_id, e2.write_id) for e1, e2 in truth.hidden_by_forks()}
    assert hidden == {("content", "engine-1#1", "sync-1#1"), ("label", "engine-1#1", "sync-1#1")}
    assert len(truth.unseen_overwrites()) == 3  # and the label the workflow reverted
    findings, scores = audited(tmp_path, spool, truth)
    assert all(s.exact for s in scores.values())
    forks = [f for f in findings if f.detector == "version_conflict"]
    assert [sorted(w["write_id"] for w in f.witnesses) for f in forks] == [
        ["alice#1", "engine-1#1", "engine-1#1"]
    ]


def test_older_data_is_a_stale_overwrite_and_the_fix_refuses_it(tmp_path, spool):
    storage = ExternalStorage()
    for safe in (False, True):
        store, truth = workspace(tmp_path / ("safe" if safe else "unsafe"))
        storage.publish(BLOCK, "processing", 0)
        done = storage.publish(BLOCK, "done", 21)
        task = Client(store, writer="instantiation", actor="task-1", safe=safe)
        poller = Client(store, writer="polling_sync", actor="sync-1", safe=safe)
        with audit.writer("instantiation", actor="task-1"):
            task.write(task.open(BLOCK), {"indexingList.0.status": "done"},
                       source_ts=done.produced_at)
        cached = storage.fetch(BLOCK, cached=True)
        assert cached.status == "processing"
        with audit.writer("polling_sync", actor="sync-1"):
            poller.write(poller.open(BLOCK), {"indexingList.0.status": cached.status},
                         source_ts=cached.produced_at)
        detectors = {i.detector for i in truth.incidents()}
        status = store.read(BLOCK)["indexingList"][0]["status"]
        if safe:
            assert (status, detectors, poller.stats.refused_fields) == ("done", set(), 1)
        else:
            assert status == "processing"
            assert detectors == {"stale_overwrite", "priority_inversion"}


def test_a_seed_fixes_every_writers_plan(tmp_path):
    def plans(seed: int, name: str):
        store = BlockStore(tmp_path / name, lambda save: None)
        actors = plan_actors(Workload(seed=seed, duration=0.5, blocks=5, writers=2), store,
                             ExternalStorage(), safe=False)
        return [(a.kind, a.name, a.plan) for a in actors]

    first = plans(11, "a")
    assert first == plans(11, "b")
    assert first != plans(12, "c")
    assert sorted({kind for kind, _, _ in first}) == [
        "instantiation", "polling_sync", "user", "workflow"
    ]
    assert len(first) == 8


def transition(write_id: str, writer: str, old, new, ts: float, version: int,
               base_version: int) -> Transition:
    return Transition(BLOCK, "indexingList.0.status", old, new, writer, write_id, write_id,
                      base_version, version, source_ts=ts, ts=ts, intended=True,
                      position=version - 1, seen=base_version - 1)


def incidents_of(*history: Transition) -> set[tuple[str, tuple[str, ...], str | None]]:
    truth = GroundTruth(config=Config())
    truth.transitions[(BLOCK, "indexingList.0.status")] = list(history)
    return {(i.detector, i.write_ids, i.severity) for i in truth.incidents()}


def test_the_truth_follows_the_contracts_rules_for_reruns_and_echoes():
    # one writer re-running the status is no oscillation
    assert incidents_of(
        transition("w1", "workflow", "idle", "processing", 0, 2, 1),
        transition("w2", "workflow", "processing", "done", 5, 3, 2),
        transition("w3", "workflow", "done", "processing", 9, 4, 3),
        transition("w4", "workflow", "processing", "done", 20, 5, 4),
    ) == set()
    # an echo of the value already there, from a stale read: a lost update, as a warning
    assert incidents_of(
        transition("w1", "workflow", "processing", "done", 0, 3, 2),
        transition("p1", "polling_sync", "processing", "done", 1, 4, 2),
    ) == {("lost_update", ("w1", "p1"), "warning"), ("chain_break", ("w1", "p1"), None)}
    # another writer putting back what was replaced still flaps, stepping over the echo
    assert incidents_of(
        transition("w1", "workflow", "processing", "done", 0, 3, 2),
        transition("p1", "polling_sync", "done", "done", 1, 4, 3),
        transition("u1", "user", "done", "processing", 2, 5, 4),
    ) == {("oscillation", ("w1", "u1"), None)}
