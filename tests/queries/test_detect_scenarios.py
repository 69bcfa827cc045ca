"""Histories of a workflow workspace, through the ingest path, in any line order.

Each history raises exactly the detectors docs/contract.md §3 says, with the witnesses in
commit order, whether the file is read in order or shuffled.
"""

from __future__ import annotations

import pytest
from detect_histories import ev, summary

from queries.runner import check

SEEDS = [None, 1, 2, 3]


def expect(store, events, expected, seeds=SEEDS):
    for seed in seeds:
        con = store(events, seed=seed)
        got = summary(check(con))
        assert got == expected, f"line order seed={seed}"


# -- the read-modify-write race on a list (item2 is lost) --------------------------------

def list_race(versions: bool):
    v = (lambda base, ver: {"base_version": base, "version": ver}) if versions else (
        lambda base, ver: {})
    return [
        ev("i1", 0, "block-A", "indexingList.0", "instantiation", new={"name": "item1"},
           write_id="w1", **v(0, 1)),
        ev("i2", 10, "block-A", "indexingList.1", "instantiation", new={"name": "item2"},
           write_id="w2", **v(1, 2)),
        ev("i3", 12, "block-A", "indexingList.1", "workflow", new={"name": "item3"},
           write_id="w3", **v(1, 3)),
    ]


@pytest.mark.parametrize("versions", [True, False], ids=["versioned", "unversioned"])
def test_list_race_loses_item2(store, versions):
    expect(store, list_race(versions), {
        ("lost_update", "block-A", "indexingList.1", ("i2", "i3")),
        # i3 says "added" while i2 had left item2 there
        ("chain_break", "block-A", "indexingList.1", ("i2", "i3")),
    })


def test_list_race_recorded_as_whole_lists(store):
    events = [
        ev("l1", 0, "block-A", "indexingList", "instantiation", new=[]),
        ev("l2", 10, "block-A", "indexingList", "instantiation", old=[], new=[{"id": 2}]),
        ev("l3", 12, "block-A", "indexingList", "workflow", old=[], new=[{"id": 3}]),
    ]
    expect(store, events, {
        ("lost_update", "block-A", "indexingList", ("l2", "l3")),
        ("chain_break", "block-A", "indexingList", ("l2", "l3")),
    })


def test_the_lost_update_message_tells_the_story(store):
    con = store(list_race(True))
    [lost] = [f for f in check(con) if f.detector == "lost_update"]
    assert lost.severity == "error"
    assert lost.writers == ["instantiation", "workflow"]
    assert "instantiation" in lost.message and "version 2" in lost.message
    assert "workflow, which had read version 1" in lost.message
    assert "'item2'" not in lost.message and '{"name":"item2"}' in lost.message
    assert [w["event_id"] for w in lost.witnesses] == ["i2", "i3"]
    assert lost.witnesses[1]["base_version"] == 1 and lost.witnesses[0]["version"] == 2
    assert lost.witnesses[1]["new"] == {"name": "item3"}
    assert lost.witnesses[0]["write_id"] == "w2"


# -- a whole-document save from a stale read reverts another writer's field -------------

def stale_save(delay: float):
    """workflow sets content at v2; instantiation, which read v1, saves the whole document."""
    return [
        ev("s1", 0, "workspace-1", "content", "instantiation", new="draft", write_id="w1",
           base_version=0, version=1),
        ev("s2", 0, "workspace-1", "indexingList", "instantiation", new=[], write_id="w1",
           base_version=0, version=1),
        ev("s3", 10, "workspace-1", "content", "workflow", old="draft", new="final",
           write_id="w2", base_version=1, version=2),
        # the save diffs against the stored document: content goes back to the stale read
        ev("s4", 10 + delay, "workspace-1", "content", "instantiation", old="final",
           new="draft", write_id="w3", base_version=1, version=3),
        ev("s5", 10 + delay, "workspace-1", "indexingList", "instantiation", old=[],
           new=["emb-1"], write_id="w3", base_version=1, version=3),
    ]


def test_whole_document_save_from_a_stale_read(store):
    # the embedding took minutes: outside the oscillation and priority windows
    expect(store, stale_save(delay=400), {
        ("lost_update", "workspace-1", "content", ("s3", "s4")),
        ("stale_overwrite", "workspace-1", "content", ("s3", "s4")),
    })


def test_whole_document_save_seconds_later_also_flaps_and_inverts_priority(store):
    expect(store, stale_save(delay=3), {
        ("lost_update", "workspace-1", "content", ("s3", "s4")),
        ("stale_overwrite", "workspace-1", "content", ("s3", "s4")),
        ("oscillation", "workspace-1", "content", ("s1", "s3", "s4")),
        ("priority_inversion", "workspace-1", "content", ("s3", "s4")),
    })


def test_stale_save_message_names_the_revert(store):
    con = store(stale_save(delay=400))
    [stale] = [f for f in check(con) if f.detector == "stale_overwrite"]
    assert stale.severity == "error"
    assert "instantiation, which had read version 1, put back the earlier value 'draft'" in (
        stale.message)


# -- SSE and polling fighting over a status (done -> error -> done) ---------------------

def status_fight(source_ts: bool = False):
    src = (lambda t: {"source_t": t}) if source_ts else (lambda t: {})
    return [
        ev("f1", 0, "block-A", "indexingList.0.status", "instantiation", new="processing",
           **src(0)),
        ev("f2", 10, "block-A", "indexingList.0.status", "workflow", old="processing",
           new="done", **src(10)),
        ev("f3", 12, "block-A", "indexingList.0.status", "polling_sync", old="done",
           new="error", **src(9)),
        ev("f4", 14, "block-A", "indexingList.0.status", "workflow", old="error", new="done",
           **src(14)),
    ]


def test_sse_and_polling_fight_over_a_status(store):
    expect(store, status_fight(), {
        ("oscillation", "block-A", "indexingList.0.status", ("f2", "f3", "f4")),
        ("priority_inversion", "block-A", "indexingList.0.status", ("f2", "f3")),
    })


def test_a_poll_answer_from_before_the_sse_event_is_also_stale(store):
    expect(store, status_fight(source_ts=True), {
        ("oscillation", "block-A", "indexingList.0.status", ("f2", "f3", "f4")),
        ("priority_inversion", "block-A", "indexingList.0.status", ("f2", "f3")),
        ("stale_overwrite", "block-A", "indexingList.0.status", ("f2", "f3")),
    })


def test_oscillation_is_one_finding_per_burst_with_its_flips(store):
    con = store(status_fight())
    [osc] = [f for f in check(con) if f.detector == "oscillation"]
    assert osc.severity == "warning"
    assert "flapped 1 time in 3 changes within 4 s" in osc.message
    assert "'done' (workflow) → 'error' (polling_sync) → 'done' (workflow)" in osc.message


# -- two saves of a workspace from the same version ------------------------------------

def two_saves(same_field: bool):
    second = "content" if same_field else "indexingList"
    old, new = ("a", "c") if same_field else ([], ["item"])
    return [
        ev("v1", 0, "workspace-1", "content", "instantiation", new="a", write_id="s0",
           base_version=0, version=1),
        ev("v2", 0, "workspace-1", "indexingList", "instantiation", new=[], write_id="s0",
           base_version=0, version=1),
        ev("v3", 10, "workspace-1", "content", "user", old="a", new="b", write_id="s1",
           base_version=1, version=2),
        ev("v4", 70, "workspace-1", second, "instantiation", old=old, new=new, write_id="s2",
           base_version=1, version=2),
    ]


def test_two_saves_from_the_same_version_fork_it(store):
    expect(store, two_saves(same_field=False), {
        ("version_conflict", "workspace-1", "$", ("v3", "v4")),
    })


def test_two_saves_of_the_same_field_from_the_same_version(store):
    expect(store, two_saves(same_field=True), {
        ("version_conflict", "workspace-1", "content", ("v3", "v4")),
        ("lost_update", "workspace-1", "content", ("v3", "v4")),
        ("chain_break", "workspace-1", "content", ("v3", "v4")),
        ("priority_inversion", "workspace-1", "content", ("v3", "v4")),
    })


def test_fork_message_names_both_writes(store):
    con = store(two_saves(same_field=False))
    [fork] = check(con)
    assert fork.severity == "error"
    assert fork.message.startswith("2 different writes of workspace-1 each produced version 2")
    assert "user (changing content, from version 1)" in fork.message
    assert "instantiation (changing indexingList, from version 1)" in fork.message


def test_a_write_whose_version_does_not_advance(store):
    events = [
        ev("n1", 0, "doc-1", "title", "user", new="x", base_version=0, version=1),
        ev("n2", 10, "doc-1", "title", "user", old="x", new="y", base_version=1, version=1),
    ]
    expect(store, events, {
        ("version_conflict", "doc-1", "title", ("n1", "n2")),  # two writes claim version 1
        ("version_conflict", "doc-1", "title", ("n2",)),  # and n2 did not advance it
    })


# -- a read-modify-write increment that loses one -----------------------------------------

def increment(versions: bool):
    v = (lambda base, ver: {"base_version": base, "version": ver}) if versions else (
        lambda base, ver: {})
    return [
        ev("c1", 0, "counter-1", "count", "workflow", new=5, actor="worker-0", **v(0, 1)),
        ev("c2", 10, "counter-1", "count", "workflow", old=5, new=6, actor="worker-1",
           **v(1, 2)),
        ev("c3", 11, "counter-1", "count", "workflow", old=5, new=6, actor="worker-2",
           **v(1, 3)),
    ]


@pytest.mark.parametrize("versions", [True, False], ids=["versioned", "unversioned"])
def test_an_increment_is_lost(store, versions):
    expect(store, increment(versions), {
        ("lost_update", "counter-1", "count", ("c2", "c3")),
        ("chain_break", "counter-1", "count", ("c2", "c3")),
    })


def test_the_increment_message_names_the_actors_and_the_value_read(store):
    con = store(increment(versions=False))
    [lost] = [f for f in check(con) if f.detector == "lost_update"]
    # both left 6: the lost update converges, and the message says why it still matters
    assert lost.severity == "warning" and lost.facts["convergent"] is True
    assert lost.message == (
        "workflow (worker-1) set count of counter-1 to 6; workflow (worker-2), which had "
        "also read 5, then set it to 6 without seeing that change; both writes left 6: if "
        "each was a relative change of the 5 it read (an increment, say), one of them is lost."
    )
    assert [w["actor"] for w in lost.witnesses] == ["worker-1", "worker-2"]
