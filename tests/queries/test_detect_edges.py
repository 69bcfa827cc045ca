"""Edge cases of commit order and values: what must and must not make a finding."""

from __future__ import annotations

import gc

import pytest
from detect_histories import ev, one_of_each, summary

from audit.config import Config
from audit.errors import AuditError
from queries.commit_order import commit_order
from queries.history import owners
from queries.runner import DETECTORS, check, detect


def test_without_versions_commit_order_is_ts_order(store):
    # lines written out of time order: ts decides, not the file
    events = [
        ev("u3", 30, "doc", "title", "user", old="b", new="c"),
        ev("u1", 0, "doc", "title", "user", new="a"),
        ev("u2", 10, "doc", "title", "user", old="a", new="b"),
    ]
    assert check(store(events)) == []


def test_versions_order_writes_even_against_the_clock(store):
    # clock skew: version 2 was stamped before version 1; by version the chain links up
    events = [
        ev("k1", 50, "doc", "title", "user", new="a", base_version=0, version=1),
        ev("k2", 40, "doc", "title", "user", old="a", new="b", base_version=1, version=2),
        ev("k3", 45, "doc", "title", "user", old="b", new="c", base_version=2, version=3),
    ]
    assert check(store(events)) == []


def test_an_entity_with_some_unversioned_writes_is_ordered_by_ts(store):
    # by version the chain would read a, c, b; by ts (the rule for mixed entities) it links
    events = [
        ev("m1", 0, "doc", "title", "user", new="a", version=5),
        ev("m2", 10, "doc", "title", "user", old="a", new="b"),
        ev("m3", 20, "doc", "title", "user", old="b", new="c", version=2),
    ]
    assert check(store(events)) == []
    versioned = [ev("x1", 0, "other", "title", "user", new="a", version=5),
                 ev("x2", 100, "other", "title", "user", old="a", new="b", version=2)]
    mixed = summary(check(store(events + versioned)))
    # the fully versioned entity next to it is still ordered by version: b comes first
    assert mixed == {("chain_break", "other", "title", ("x2", "x1"))}


def test_equal_timestamps_fall_back_to_version_then_ingest_order(store):
    versioned = [
        ev("q2", 0, "doc", "title", "user", old="a", new="b", base_version=1, version=2),
        ev("q1", 0, "doc", "title", "user", new="a", base_version=0, version=1),
    ]
    for seed in (None, 1, 2):
        assert check(store(versioned, seed=seed)) == []
    unversioned = [
        ev("r1", 0, "doc", "title", "user", new="a"),
        ev("r2", 0, "doc", "title", "user", old="a", new="b"),
    ]
    assert check(store(unversioned)) == []  # in file order they link up
    flipped = summary(check(store(unversioned[::-1])))  # in the other order they do not
    # a -> b -> a in no time, but by one writer undoing its own change: no oscillation
    assert flipped == {("chain_break", "doc", "title", ("r2", "r1"))}


def test_added_removed_added_is_a_clean_chain(store):
    events = [
        ev("a1", 0, "block", "indexingList.0", "user", new={"id": 1}),
        ev("a2", 400, "block", "indexingList.0", "user", old={"id": 1}),  # removed
        ev("a3", 800, "block", "indexingList.0", "user", new={"id": 2}),  # added again
    ]
    assert check(store(events)) == []


def test_changing_a_removed_field_or_adding_a_present_one_breaks_the_chain(store):
    events = [
        ev("b1", 0, "block", "f", "user", new=1),
        ev("b2", 400, "block", "f", "user", old=1),  # removed
        ev("b3", 800, "block", "f", "user", old=1, new=2),  # changed what was not there
        ev("b4", 1200, "block", "f", "user", new=3),  # added what was there
    ]
    assert summary(check(store(events))) == {
        ("chain_break", "block", "f", ("b2", "b3")),
        # b3 read 1, as b2 did: the removal was overwritten unseen
        ("lost_update", "block", "f", ("b2", "b3")),
        ("chain_break", "block", "f", ("b3", "b4")),
    }


@pytest.mark.parametrize(
    ("written", "read_back", "equal"),
    [
        ({"b": 1, "a": [1, 2.0]}, {"a": [1.0, 2], "b": 1.0}, True),  # key order, 1 vs 1.0
        ("1", 1, False),
        (True, 1, False),
        (None, "null", False),
        (0, False, False),
        ([], {}, False),
        ("naïve ☃", "naïve ☃", True),
        ({"nested": {"z": None, "y": [True, False]}}, {"nested": {"y": [True, False], "z": None}},
         True),
        (-0.0, 0, True),
    ],
)
def test_values_are_compared_as_json_values(store, written, read_back, equal):
    events = [
        ev("j1", 0, "doc", "v", "user", new=written),
        ev("j2", 400, "doc", "v", "user", old=read_back, new="next"),
    ]
    found = summary(check(store(events)))
    assert found == (set() if equal else {("chain_break", "doc", "v", ("j1", "j2"))})


def test_json_null_is_a_value_not_an_absence(store):
    events = [
        ev("n1", 0, "doc", "v", "user", new=None),
        ev("n2", 400, "doc", "v", "user", new="x"),  # says added, but null was there
    ]
    assert summary(check(store(events))) == {
        ("chain_break", "doc", "v", ("n1", "n2")),
        ("lost_update", "doc", "v", ("n1", "n2")),  # both found v absent
    }


def test_unicode_entities_and_field_paths(store):
    events = [
        ev("z1", 0, "ブロック-1", "名前.0.状態", "user", new="完了"),
        ev("z2", 10, "ブロック-1", "名前.0.状態", "polling_sync", old="完了", new="エラー"),
    ]
    [found] = check(store(events))
    assert (found.detector, found.entity, found.field) == (
        "priority_inversion", "ブロック-1", "名前.0.状態")
    assert "'エラー'" in found.message and "'完了'" in found.message


def test_a_store_with_rejected_lines_only_has_no_finding(store):
    con = store([], extra_lines=["not json", '{"ts": "yesterday"}', "[1, 2]"])
    assert con.execute("SELECT count(*) FROM rejected_events").fetchone()[0] == 3
    assert check(con) == []


def test_an_empty_store_has_no_finding(store):
    assert check(store([])) == []


def test_writes_of_one_write_id_are_not_a_lost_update_of_each_other(store):
    # the same write recorded twice for a field (e.g. two instrumented layers): not a race
    events = [
        ev("s1", 0, "doc", "v", "user", old="a", new="b", write_id="w1"),
        ev("s2", 1, "doc", "v", "user", old="a", new="b", write_id="w1"),
    ]
    assert {f.detector for f in check(store(events))} == {"chain_break"}


def test_event_priority_overrides_the_writer_priority(store):
    events = [
        ev("p1", 0, "doc", "v", "polling_sync", new="a", priority=90),
        ev("p2", 10, "doc", "v", "user", old="a", new="b", priority=10),
    ]
    [found] = check(store(events))
    assert found.detector == "priority_inversion"
    assert "user (priority 10)" in found.message and "polling_sync (priority 90)" in found.message


def test_thresholds_and_priorities_come_from_the_config(store):
    con = store([
        ev("c1", 0, "doc", "v", "user", new="a"),
        ev("c2", 100, "doc", "v", "bot", old="a", new="b"),
        ev("c3", 200, "doc", "v", "user", old="b", new="a"),
    ])
    default = {f.detector for f in check(con)}
    assert default == {"priority_inversion"}  # bot (default 50) < user (100), 100 s apart
    config = Config(oscillation_window_s=200, priority_window_s=50,
                    writer_priorities={"user": 10, "bot": 10})
    tuned = {(f.detector, tuple(f.event_ids)) for f in check(con, config=config)}
    assert tuned == {("oscillation", ("c1", "c2", "c3"))}


def test_detector_entity_and_time_selection(store):
    con = store([
        ev("d1", 0, "A", "v", "user", new="a"),
        ev("d2", 10, "A", "v", "polling_sync", old="a", new="b"),
        ev("d3", 1000, "B", "v", "user", new="a"),
        ev("d4", 1010, "B", "v", "polling_sync", old="x", new="b"),
    ])
    assert {(f.detector, f.entity) for f in check(con)} == {
        ("priority_inversion", "A"), ("priority_inversion", "B"), ("chain_break", "B")}
    assert {f.entity for f in check(con, entity="B")} == {"B"}
    assert {f.detector for f in check(con, detectors=["chain_break"])} == {"chain_break"}
    # the range keeps findings whose witnesses overlap it; earlier writes stay context
    late = check(con, since="2026-03-01T12:16:45Z")
    assert {f.entity for f in late} == {"B"}
    assert {f.entity for f in check(con, until="2026-03-01T12:00:05Z")} == {"A"}
    assert check(con, since="2026-03-01T13:00:00Z") == []


def test_bad_selection_is_a_user_error(store):
    con = store([ev("e1", 0, "A", "v", "user", new="a")])
    with pytest.raises(AuditError, match="unknown detector 'nope'"):
        check(con, detectors=["nope"])
    with pytest.raises(AuditError, match="RFC 3339"):
        check(con, since="yesterday")
    with pytest.raises(AuditError, match="after"):
        check(con, since="2026-03-02T00:00:00Z", until="2026-03-01T00:00:00Z")


def test_findings_are_stable_across_runs_and_line_orders(store):
    events = [
        ev("g1", 0, "A", "v", "workflow", new="a", base_version=0, version=1),
        ev("g2", 5, "A", "v", "polling_sync", old="a", new="b", base_version=1, version=2),
        ev("g3", 6, "A", "v", "workflow", old="a", new="c", base_version=1, version=3),
    ]
    runs = [[f.to_dict() for f in check(store(events, seed=s))] for s in (None, 7, 8)]
    assert runs[0] == runs[1] == runs[2]
    assert len({d["fingerprint"] for d in runs[0]}) == len(runs[0])


def test_every_finding_has_the_contract_shape(store):
    con = store([
        ev("h1", 0, "A", "v", "workflow", new="a", base_version=0, version=1,
           trace_id="ab" * 16, span_id="cd" * 8),
        ev("h2", 5, "A", "v", "polling_sync", old="b", new="c", base_version=0, version=1),
    ])
    findings = check(con)
    assert {f.detector for f in findings} <= set(DETECTORS)
    for f in findings:
        d = f.to_dict()
        assert set(d) >= {"detector", "entity", "field", "writers", "event_ids", "first_ts",
                          "last_ts", "severity", "fingerprint", "message", "witnesses"}
        assert d["first_ts"] <= d["last_ts"] and d["first_ts"].endswith("Z")
        assert [w["event_id"] for w in d["witnesses"]] == d["event_ids"]
        assert set(d["witnesses"][0]) >= {"event_id", "ts", "writer", "actor", "old", "new",
                                          "version", "base_version", "source_ts", "trace_id",
                                          "write_id"}
    assert findings[0].witnesses[0]["trace_id"] == "ab" * 16


def test_a_write_refused_by_compare_and_swap_is_not_a_transition(store):
    # instantiation read v1 and tried to save over v2: the guard refused it and recorded the
    # attempt; the data never changed, so nothing may be reported on it
    events = [
        ev("c1", 0, "blk", "status", "workflow", new="processing", base_version=0, version=1),
        ev("c2", 10, "blk", "status", "workflow", old="processing", new="done",
           base_version=1, version=2),
        ev("c3", 12, "blk", "status", "polling_sync", old="processing", new="error",
           base_version=1, attrs={"rejected": True}),
        ev("c4", 20, "blk", "status", "user", old="done", new="archived",
           base_version=2, version=3),
    ]
    con = store(events)
    assert check(con) == []
    assert [w["writer"] for w in owners(con)[0]["writers"]] == ["workflow", "user"]
    events[2]["attrs"] = {"rejected": False}  # had it been applied, it is a lost update
    assert "lost_update" in {f.detector for f in check(store(events))}


@pytest.mark.parametrize("spelling, equal", [
    ("1.5", True), ("1.50", True), ("1.5e0", True), ("15e-1", True), ("1.4", False),
])
def test_numbers_are_compared_by_value_not_by_spelling(store, spelling, equal):
    import json

    first = ev("s1", 0, "doc", "v", "user", new=1.5)
    second = json.dumps(ev("s2", 400, "doc", "v", "user", old=1.5, new="next"))
    second = second.replace('"old": 1.5', f'"old": {spelling}')
    found = summary(check(store([first], extra_lines=[second])))
    assert found == (set() if equal else {("chain_break", "doc", "v", ("s1", "s2"))})


@pytest.mark.parametrize("collecting", [True, False])
def test_a_check_leaves_the_cycle_collector_as_it_found_it(store, collecting):
    # the runner pauses Python's cycle collector while it builds findings
    # (queries/runner.py); the service or notebook it runs in keeps its own setting,
    # also when the check fails
    con = store(one_of_each())
    (gc.enable if collecting else gc.disable)()
    try:
        found = check(con)
        assert gc.isenabled() is collecting
        with pytest.raises(AuditError, match="unknown detector"):
            detect(commit_order(con), ["no_such_detector"])
        assert gc.isenabled() is collecting
    finally:
        gc.enable()
    assert {f.detector for f in found} == set(DETECTORS)
