"""The same detectors give the same findings on DuckDB and on chdb (docs/contract.md §8).

Each history is ingested through the real ingest into a DuckDB file and into a chdb store;
then every view is compared whole: findings as JSON (detector, entity, field, event ids,
severity, facts, message, witnesses), under several scopes, timelines, replays, owners and
stats. The histories: the demo's two runs, a seeded 100k-event history with every anomaly
(tests/stores/histories.py), and a small one with each edge case by name.

On chdb the same checks also run with the commit order read as common table expressions
(what each shard of a cluster runs) and split into entity-hash buckets, whose union must be
the whole: a detector reads one entity's events only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from histories import write_history

from audit.config import Config
from collectors.stats import store_stats
from collectors.store import open_store
from collectors.stores import ingest
from queries import check, owners, replay, timeline

CONFIG = Config()
SCOPES = {
    "whole": {},
    "until alone": {"until": "2026-05-01T20:00:00Z"},
    "since alone": {"since": "2026-05-02T01:00:00Z"},
    "since and until": {"since": "2026-05-01T12:00:00Z", "until": "2026-05-01T13:00:00Z"},
    "two detectors": {"detectors": ["oscillation", "stale_overwrite"]},
}


def as_json(findings) -> list[str]:
    return [json.dumps(f.to_dict(), sort_keys=True, default=str) for f in findings]


def views(con, entities: list[str], scopes=SCOPES) -> dict[str, object]:
    """Everything a user sees of the store, as comparable data."""
    out: dict[str, object] = {
        name: as_json(check(con, config=CONFIG, **scope)) for name, scope in scopes.items()}
    for entity in entities:
        out[f"check {entity}"] = as_json(check(con, config=CONFIG, entity=entity))
        out[f"timeline {entity}"] = json.dumps(timeline(con, entity, config=CONFIG),
                                               default=str, sort_keys=True)
        out[f"replay {entity}"] = replay(con, entity, "2026-05-01T18:00:00Z")
    out["owners"] = owners(con)
    stats = store_stats(con)
    stats["by_writer"] = [list(r) for r in stats["by_writer"]]
    stats["by_entity_type"] = [list(r) for r in stats["by_entity_type"]]
    stats["rejects_by_reason"] = [list(r) for r in stats["rejects_by_reason"]]
    out["stats"] = stats
    return out


def compare(tmp: Path, files: list[Path], entities: list[str],
            scopes: dict[str, dict] = SCOPES, bucket_scopes: tuple[str, ...] = ()
            ) -> dict[str, dict]:
    """The views of a DuckDB store and a chdb store of ``files``; on chdb also the findings
    read as CTEs and per entity-hash bucket (unioned)."""
    duck = open_store(tmp / "store.duckdb")
    try:
        ingest(duck, [str(f) for f in files])
        on_duckdb = views(duck, entities, scopes)
    finally:
        duck.close()
    ch = open_store(f"chdb:{tmp / 'store.chdb'}")
    try:
        ingest(ch, [str(f) for f in files])
        on_chdb = views(ch, entities, scopes)
        bucketed = ch.partitioned(4)
        per_bucket = {name: sorted(as_json(check(bucketed, config=CONFIG, **scopes[name])))
                      for name in bucket_scopes}
    finally:
        ch.close()
    return {"duckdb": on_duckdb, "chdb": on_chdb, "buckets": per_bucket}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seeded")
    path = write_history(tmp / "history.jsonl", 100_000, seed=17)
    # The other views and scopes run on the smaller history: the same code, less waiting.
    return compare(tmp, [path], [], {"whole": {}})


@pytest.fixture(scope="module")
def smaller(tmp_path_factory):
    """5k events of the same kind, for every scope and view, and the bucketed runs (which
    cost a commit order per bucket)."""
    tmp = tmp_path_factory.mktemp("smaller")
    path = write_history(tmp / "history.jsonl", 5_000, seed=23)
    return compare(tmp, [path], ["e-3", "e-500"], SCOPES, ("whole", "until alone"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from frontends.demo.pipeline import DemoOptions, run_demo
    from frontends.demo.simulation import Workload

    tmp = tmp_path_factory.mktemp("demo")
    result = run_demo(DemoOptions(workload=Workload(seed=5, duration=0.5, blocks=4, writers=1),
                                  db=tmp / "demo.duckdb", config=CONFIG, workdir=tmp / "work",
                                  html=False))
    compared = {}
    for run in result.runs:
        (tmp / run.mode).mkdir()
        compared[run.mode] = compare(tmp / run.mode, [tmp / "work" / run.mode / "spool"],
                                     ["block-01", "block-03"], {"whole": {}})
    return compared


def edge_events() -> list[dict]:
    """One case of each edge by name; times around 2026-05-01T12:00Z."""
    def ev(eid, t, entity, field, writer, **rest):
        return {"event": "field.transition", "event_id": eid, "entity": entity,
                "field": field, "writer": writer,
                "ts": f"2026-05-01T12:{t // 60:02d}:{t % 60:09.6f}Z", **rest}

    return [
        # oscillation exactly at the window's edge (60 s) and a microsecond beyond it
        ev("w1", 0, "edge", "s", "workflow", change="added", new="a"),
        ev("w2", 30, "edge", "s", "polling_sync", old="a", new="b"),
        ev("w3", 60, "edge", "s", "workflow", old="b", new="a"),
        # priority inversion 300 s apart: not < window
        ev("p1", 0, "prio", "s", "user", change="added", new="x"),
        ev("p2", 300, "prio", "s", "polling_sync", old="x", new="y"),
        # a first transition that carries an old, then a chain break
        ev("f1", 5, "first", "s", "user", old="was", new="is"),
        ev("f2", 6, "first", "s", "workflow", old="other", new="then"),
        # a refused write (JSON true and text "true") between two applied ones
        ev("r1", 1, "refused", "v", "user", change="added", new=1, version=1, base_version=0),
        ev("r2", 2, "refused", "v", "workflow", old=1, new=2, version=2, base_version=1,
           attrs={"rejected": True}),
        ev("r3", 3, "refused", "v", "importer", old=1, new=3, version=2, base_version=1,
           attrs={"rejected": "true"}),
        ev("r4", 4, "refused", "v", "user", old=1, new=4, version=2, base_version=1),
        # mixed versioned and unversioned writes of one entity: ordered by ts
        ev("m1", 10, "mixed", "s", "user", change="added", new="a", version=5, base_version=4),
        ev("m2", 11, "mixed", "s", "workflow", old="a", new="b"),
        ev("m3", 12, "mixed", "s", "user", old="a", new="c", version=6, base_version=4),
        # blind writes: no old, never compared
        ev("b1", 20, "blind", "hb", "heartbeat", change="added", new=1),
        ev("b2", 21, "blind", "hb", "heartbeat", change="changed", new=2),
        ev("b3", 22, "blind", "hb", "user", change="changed", new=3),
        # stale source data and a fork of versions
        ev("s1", 30, "stale", "s", "workflow", change="added", new="n", source_ts=
           "2026-05-01T12:00:30Z", version=1, base_version=0, write_id="w-a"),
        ev("s2", 31, "stale", "s", "polling_sync", old="n", new="o",
           source_ts="2026-05-01T11:00:00Z", version=1, base_version=0),
    ]


@pytest.fixture(scope="module")
def edges(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("edges")
    path = tmp / "edges.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in edge_events()))
    scopes = {"whole": {}, "until alone": {"until": "2026-05-01T12:00:30Z"}}
    return compare(tmp, [path], ["edge", "refused", "mixed"], scopes, ("whole",))


def assert_same(result: dict) -> None:
    duck, ch = result["duckdb"], result["chdb"]
    assert duck.keys() == ch.keys()
    for view in duck:
        assert ch[view] == duck[view], view


def test_the_seeded_history_gives_identical_views(seeded):
    whole = seeded["duckdb"]["whole"]
    detectors = {json.loads(f)["detector"] for f in whole}
    assert len(whole) > 30_000 and len(detectors) == 6
    assert_same(seeded)


def test_a_smaller_history_gives_identical_views_in_every_scope(smaller):
    assert all(smaller["duckdb"][name] for name in SCOPES)
    assert_same(smaller)


def test_the_demo_runs_give_identical_views(demo):
    assert demo["unsafe"]["duckdb"]["whole"]
    for mode in demo:
        assert_same(demo[mode])


def test_the_edge_cases_give_identical_views(edges):
    found = {(json.loads(f)["detector"], json.loads(f)["entity"])
             for f in edges["duckdb"]["whole"]}
    assert ("oscillation", "edge") in found and ("priority_inversion", "prio") not in found
    assert ("chain_break", "first") in found and ("stale_overwrite", "stale") in found
    assert not any(entity == "blind" for _, entity in found)
    assert_same(edges)


@pytest.mark.parametrize("history", ["smaller", "edges"])
def test_per_bucket_runs_union_to_the_whole(history, request):
    """A detector reads one entity's events only: what a cluster runs on each shard,
    unioned, is exactly the whole."""
    result = request.getfixturevalue(history)
    assert result["buckets"]
    assert_same(result)
    for name, findings in result["buckets"].items():
        assert findings == sorted(result["chdb"][name]), name
