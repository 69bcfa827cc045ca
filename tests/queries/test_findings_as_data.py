"""Findings are data (docs/contract.md §3): each carries what its detector measured as
`facts`, its witnesses in a typed shape, and a message rendered from those two alone."""

from __future__ import annotations

import json

import pytest
from detect_histories import one_of_each

from queries.explain import render
from queries.finding import Witness
from queries.runner import check

WITNESS_KEYS = set(Witness.__annotations__)


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
