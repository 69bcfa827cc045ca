"""Blind writes (docs/contract.md §1): a `changed` event without `old`, whose writer did not
read the value. Its old is unknown, which is not JSON null and not absent: no rule compares
it, and the version rules still apply."""

from __future__ import annotations

from detect_histories import ev, summary

from queries import timeline
from queries.runner import check


def blind(event_id, t, entity, field, writer, new, **extra):
    e = ev(event_id, t, entity, field, writer, old="?", new=new, **extra)
    del e["old"]
    return e


def test_a_blind_write_is_stored_with_old_unknown_not_null(store):
    con = store([
        ev("n1", 0, "doc", "v", "user", new="a"),
        blind("n2", 400, "doc", "v", "sensor", "b"),
        ev("n3", 800, "doc", "v", "user", old=None, new="c"),  # JSON null: a value read
    ])
    rows = con.execute("SELECT event_id, old FROM events ORDER BY seq").fetchall()
    assert rows == [("n1", None), ("n2", None), ("n3", "null")]


def test_a_blind_write_breaks_no_chain_and_loses_no_update_by_value(store):
    events = [
        ev("b1", 0, "doc", "v", "user", new="a"),
        ev("b2", 400, "doc", "v", "workflow", old="a", new="b"),
        blind("b3", 800, "doc", "v", "sensor", "c"),
        blind("b4", 1200, "doc", "v", "sensor", "d"),
    ]
    assert check(store(events)) == []
    # read as JSON null instead, the same old breaks the chain
    events[2] = ev("b3", 800, "doc", "v", "sensor", old=None, new="c")
    assert summary(check(store(events))) == {("chain_break", "doc", "v", ("b2", "b3"))}


def test_a_write_after_a_blind_one_is_not_judged_by_its_unknown_old(store):
    # b2 did not read; b3 says it found the field absent, as b2's old "is" (NULL): by value
    # that would be a lost update of b2, but b2's old is unknown, not absent
    events = [
        ev("c1", 0, "doc", "v", "user", new="a"),
        blind("c2", 400, "doc", "v", "sensor", "b"),
        ev("c3", 800, "doc", "v", "user", new="c"),  # added over b: a chain break only
    ]
    assert summary(check(store(events))) == {("chain_break", "doc", "v", ("c2", "c3"))}


def test_the_version_rules_still_apply_to_a_blind_write(store):
    events = [
        ev("v1", 0, "doc", "v", "user", new="a", base_version=0, version=1),
        ev("v2", 400, "doc", "v", "workflow", old="a", new="b", base_version=1, version=2),
        blind("v3", 800, "doc", "v", "sensor", "c", base_version=1, version=3),
    ]
    [lost] = check(store(events))
    assert (lost.detector, lost.event_ids, lost.severity) == ("lost_update", ["v2", "v3"],
                                                              "error")
    assert lost.witnesses[1]["blind"] is True and lost.witnesses[0]["blind"] is False
    assert lost.message == (
        "workflow set v of doc to 'b' at version 2; sensor, which had read version 1 and "
        "wrote without reading the value, overwrote it with 'c' at version 3 without seeing it."
    )


def test_a_blind_writes_unknown_old_is_not_a_value_put_back(store):
    # r1's old is unknown, not absent: r3 removing the field from a stale read does not put
    # back a value the field is known to have held
    events = [
        blind("r1", 0, "doc", "v", "sensor", "a", base_version=0, version=1),
        ev("r2", 400, "doc", "v", "workflow", old="a", new="b", base_version=1, version=2),
        ev("r3", 800, "doc", "v", "workflow", old="b", base_version=1, version=3),  # removed
    ]
    assert {f.detector for f in check(store(events))} == {"lost_update"}


def test_the_timeline_says_which_old_was_not_read(store):
    con = store([ev("t1", 0, "doc", "v", "user", new="a"), blind("t2", 10, "doc", "v", "x", "b")])
    rows = {r["event_id"]: r for r in timeline(con, "doc")}
    assert (rows["t2"]["blind"], rows["t2"]["has_old"]) == (True, False)
    assert (rows["t1"]["blind"], rows["t1"]["change"]) == (False, "added")
