"""Findings are data (docs/contract.md §3): each carries what its detector measured as
`facts`, its witnesses in a typed shape, and a message rendered from those two alone."""

from __future__ import annotations

import json

import pytest
from detect_histories import ev

from queries.explain import render
from queries.finding import Witness
from queries.runner import check

WITNESS_KEYS = set(Witness.__annotations__)


def one_of_each():
    """A history where every detector fires once at least."""
    return [
        # lost_update (version), chain_break, priority_inversion, stale_overwrite (revert)
        ev("a1", 0, "A", "v", "workflow", new="x", base_version=0, version=1),
        ev("a2", 10, "A", "v", "user", old="x", new="y", base_version=1, version=2),
        ev("a3", 12, "A", "v", "polling_sync", old="y", new="x", base_version=1, version=3,
           source_t=-5),
        # version_conflict: two writes produce version 2
        ev("b1", 0, "B", "v", "user", new="x", base_version=0, version=1),
        ev("b2", 10, "B", "v", "user", old="x", new="y", base_version=1, version=2,
           write_id="b-1"),
        ev("b3", 20, "B", "w", "workflow", new="z", base_version=1, version=2,
           write_id="b-2"),
        # oscillation and stale_overwrite by source time
        ev("c1", 0, "C", "s", "workflow", new="done", source_t=0),
        ev("c2", 5, "C", "s", "polling_sync", old="done", new="error", source_t=-10),
        ev("c3", 8, "C", "s", "workflow", old="error", new="done", source_t=8),
        # chain_break: d2 replaced a value nobody recorded
        ev("d1", 0, "D", "v", "user", new="x"),
        ev("d2", 400, "D", "v", "user", old="zz", new="y"),
    ]


@pytest.fixture(scope="module")
def findings(tmp_path_factory):
    from detect_histories import load

    from collectors.store import open_store

    db = tmp_path_factory.mktemp("facts") / "s.duckdb"
    load(db, one_of_each())
    con = open_store(db, read_only=True)
    try:
        yield check(con)
    finally:
        con.close()


def by(findings, detector, **facts):
    return [f for f in findings if f.detector == detector
            and all(f.facts.get(k) == v for k, v in facts.items())]


def test_every_detector_keeps_its_facts(findings):
    [lost] = by(findings, "lost_update")
    assert lost.facts == {"rule": "version", "read_version": 1, "overwritten_version": 2,
                          "convergent": False}
    [revert] = by(findings, "stale_overwrite", rule="revert")
    assert revert.facts["read_version"] == 1 and revert.facts["overwritten_version"] == 2
    [older] = by(findings, "stale_overwrite", rule="source_ts")
    assert older.facts["source_ts"] == "2026-03-01T11:59:50Z"
    assert older.facts["overwritten_source_ts"] == "2026-03-01T12:00:00Z"
    [inversion] = [f for f in by(findings, "priority_inversion") if f.entity == "A"]
    assert inversion.facts == {"priority": 40, "overwritten_priority": 100,
                               "seconds_after": 2.0}
    [fork] = by(findings, "version_conflict")
    assert fork.facts == {"rule": "fork", "version": 2, "writes": 2, "read_version": None}
    [osc] = [f for f in by(findings, "oscillation") if f.entity == "C"]
    # one flip that is both: c3 puts back 'done' and takes the field back from the poller
    assert osc.facts == {"flips": 1, "returns": 1, "handbacks": 1, "changes": 3,
                         "window_s": 60.0, "span_s": 8.0}
    [chain] = by(findings, "chain_break")
    assert chain.facts == {"rule": "old"}


def test_facts_and_witnesses_travel_as_plain_json(findings):
    for f in findings:
        d = json.loads(json.dumps(f.to_dict()))  # no default=: nothing but JSON types
        assert d["facts"] == f.facts
        for w in d["witnesses"]:
            assert set(w) == WITNESS_KEYS  # no private keys such as _ts or has_old
            assert w["ts"].endswith("Z")


def test_the_message_is_rendered_from_facts_and_witnesses_alone(findings):
    for f in findings:
        assert render(f.detector, f.entity, f.field, f.witnesses, f.facts) == f.message
    # change a fact, and the sentence follows it
    [inversion] = [f for f in by(findings, "priority_inversion") if f.entity == "A"]
    earlier = {**inversion.facts, "seconds_after": -3.5}
    assert "3.5 s before (by the clocks; after, in commit order)" in render(
        "priority_inversion", "A", "v", inversion.witnesses, earlier)
