"""Precision on busy, correct systems: no alarm where nothing went wrong (docs/contract.md §3).

Re-runs by one writer, writes that converge on the value already there, and writes that
change nothing are not conflicts; the lost update hidden in two increments that both wrote
11 (Hermitage's P4) still is.
"""

from __future__ import annotations

from collections import Counter

import pytest
from busy_histories import busy_history
from detect_histories import ev, load, summary

from collectors.store import open_store
from queries.runner import check

SEEDS = [None, 1, 2]


def expect(store, events, expected, seeds=SEEDS):
    for seed in seeds:
        con = store(events, seed=seed)
        got = summary(check(con))
        assert got == expected, f"line order seed={seed}"
        # the suspects are enough: the whole history gives the same findings
        assert summary(check(con, suspects_only=False)) == got


def versions(on: bool, base: int, version: int) -> dict:
    return {"base_version": base, "version": version} if on else {}


# -- a busy, correct workload ---------------------------------------------------------------

@pytest.fixture(scope="module")
def busy(tmp_path_factory):
    db = tmp_path_factory.mktemp("busy") / "busy.duckdb"
    events = busy_history(blocks=400, seed=7)
    load(db, events, seed=3)
    con = open_store(db, read_only=True)
    yield con, events
    con.close()


def test_a_busy_correct_history_raises_no_error_and_no_conflict(busy):
    con, events = busy
    findings = check(con)
    assert len(events) > 10_000
    by_detector = Counter((f.detector, f.severity) for f in findings)
    # only the poller's echoes are defensible: it did act on a stale read, and its write
    # left the value it found (a converging lost update: a warning)
    assert set(by_detector) == {("chain_break", "warning"), ("lost_update", "warning")}, (
        by_detector)
    assert all(f.witnesses[-1]["writer"] == "polling_sync" for f in findings)
    assert all(f.facts["convergent"] for f in findings if f.detector == "lost_update")
    echoes = sum(1 for e in events if e["writer"] == "polling_sync")
    assert by_detector[("lost_update", "warning")] == echoes


def test_the_busy_history_needs_only_the_suspects(busy):
    con, _ = busy
    whole = check(con, suspects_only=False)
    assert [f.to_dict() for f in whole] == [f.to_dict() for f in check(con)]


# -- one writer re-running a block ------------------------------------------------------------

def test_one_writer_rerunning_a_status_is_not_an_oscillation(store):
    status = "indexingList.0.status"
    events = [
        ev("r1", 0, "block-A", status, "workflow", old="idle", new="processing"),
        ev("r2", 8, "block-A", status, "workflow", old="processing", new="done"),
        ev("r3", 15, "block-A", status, "workflow", old="done", new="processing"),
        ev("r4", 30, "block-A", status, "workflow", old="processing", new="done"),
    ]
    expect(store, events, set())


def test_writers_taking_turns_still_oscillate(store):
    events = [
        ev("w1", 0, "block-A", "status", "workflow", new="a"),
        ev("w2", 5, "block-A", "status", "polling_sync", old="a", new="b"),
        ev("w3", 10, "block-A", "status", "workflow", old="b", new="c"),
    ]
    expect(store, events, {
        ("oscillation", "block-A", "status", ("w1", "w2", "w3")),
        ("priority_inversion", "block-A", "status", ("w1", "w2")),
    })


# -- an echo that converges on the value already there -------------------------------------

def echo(versioned: bool):
    """workflow: processing -> done; the poller, from a read before that, also -> done."""
    return [
        ev("e0", 0, "block-A", "status", "workflow", new="processing",
           **versions(versioned, 0, 1)),
        ev("e1", 10, "block-A", "status", "workflow", old="processing", new="done",
           **versions(versioned, 1, 2)),
        ev("e2", 11, "block-A", "status", "polling_sync", old="processing", new="done",
           **versions(versioned, 1, 3)),
    ]


@pytest.mark.parametrize("versioned", [True, False], ids=["versioned", "unversioned"])
def test_an_echo_of_the_value_already_there_is_no_inversion_and_no_stale_overwrite(
    store, versioned
):
    expect(store, echo(versioned), {
        ("lost_update", "block-A", "status", ("e1", "e2")),
        ("chain_break", "block-A", "status", ("e1", "e2")),
    })
    [lost] = [f for f in check(store(echo(versioned))) if f.detector == "lost_update"]
    assert lost.severity == "warning"
    assert lost.facts["convergent"] is True
    assert "both writes left 'done'" in lost.message


def test_an_echo_is_stepped_over_when_counting_changes(store):
    # the poller's echo changed nothing: between workflow's change and the user's, the
    # user put back what workflow replaced, 4 s later
    events = [
        ev("s0", 0, "block-A", "status", "instantiation", new="idle"),
        ev("s1", 10, "block-A", "status", "workflow", old="idle", new="done"),
        ev("s2", 11, "block-A", "status", "polling_sync", old="done", new="done"),
        ev("s3", 12, "block-A", "status", "polling_sync", old="done", new="done"),
        ev("s4", 14, "block-A", "status", "user", old="done", new="idle"),
    ]
    expect(store, events, {("oscillation", "block-A", "status", ("s1", "s4"))})
    [osc] = check(store(events))
    assert osc.facts["changes"] == 2 and osc.facts["returns"] == 1
    assert osc.facts["span_s"] == 4


def test_a_write_that_changes_nothing_is_not_a_hand_back(store):
    # W1, W2 (echoing W1's value), W1: only one writer changed anything
    events = [
        ev("h1", 0, "block-A", "status", "user", new="a"),
        ev("h2", 5, "block-A", "status", "workflow", old="a", new="a"),
        ev("h3", 10, "block-A", "status", "user", old="a", new="b"),
    ]
    expect(store, events, set())


# -- Hermitage P4: two increments that both wrote 11 ----------------------------------------

@pytest.mark.parametrize("versioned", [True, False], ids=["versioned", "unversioned"])
def test_two_increments_from_10_to_11_are_still_a_lost_update(store, versioned):
    events = [
        ev("p0", 0, "counter", "value", "setup", new=10, **versions(versioned, 0, 1)),
        ev("p1", 5, "counter", "value", "t1", old=10, new=11, **versions(versioned, 1, 2)),
        ev("p2", 6, "counter", "value", "t2", old=10, new=11, **versions(versioned, 1, 3)),
    ]
    expect(store, events, {
        ("lost_update", "counter", "value", ("p1", "p2")),
        ("chain_break", "counter", "value", ("p1", "p2")),
    })
    [lost] = [f for f in check(store(events)) if f.detector == "lost_update"]
    assert lost.severity == "warning"
    assert "both writes left 11" in lost.message and "increment" in lost.message


# -- the explanations say why the rule fired ------------------------------------------------

def test_an_oscillation_message_says_which_rule_fired(store):
    returned = [
        ev("o1", 0, "b", "s", "workflow", new="processing"),
        ev("o2", 10, "b", "s", "workflow", old="processing", new="done"),
        ev("o3", 12, "b", "s", "polling_sync", old="done", new="processing"),
    ]
    [osc] = [f for f in check(store(returned)) if f.detector == "oscillation"]
    assert "a writer put back the value another writer had just replaced" in osc.message
    assert "within the 60 s window" in osc.message
    turns = [
        ev("o1", 0, "b", "s", "workflow", new="a"),
        ev("o2", 10, "b", "s", "polling_sync", old="a", new="b"),
        ev("o3", 12, "b", "s", "workflow", old="b", new="c"),
    ]
    [osc] = [f for f in check(store(turns)) if f.detector == "oscillation"]
    assert "workflow and polling_sync took the field back from each other (1 time)" in (
        osc.message)
    assert osc.facts["handbacks"] == 1 and osc.facts["returns"] == 0


# -- what `check` keeps of the history is enough to step over echoes -----------------------

@pytest.mark.parametrize("echoer", ["workflow", "user"],
                         ids=["after-the-change", "before-the-putting-back"])
def test_an_echo_by_either_writer_is_stepped_over_with_the_suspects_alone(store, echoer):
    # workflow's change a1 is 400 s after the user's, so neither it nor (when the user
    # echoes) the putting back a3 changes hands close in time to the write before it
    events = [
        ev("a0", 0, "block-A", "status", "user", new="a"),
        ev("a1", 400, "block-A", "status", "workflow", old="a", new="b"),
        ev("a2", 401, "block-A", "status", echoer, old="b", new="b"),
        ev("a3", 402, "block-A", "status", "user", old="b", new="a"),
    ]
    expect(store, events, {("oscillation", "block-A", "status", ("a1", "a3"))})
