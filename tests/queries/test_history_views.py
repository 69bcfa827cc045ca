"""timeline, replay and owners: the store seen per entity, per moment and per field."""

from __future__ import annotations

from detect_histories import at, ev

from queries import check, owners, replay, timeline
from queries.commit_order import commit_order


def history():
    return [
        ev("t1", 0, "block-A", "content", "user", new="hello", base_version=0, version=1,
           write_id="w1"),
        ev("t2", 0, "block-A", "indexingList.0.status", "user", new="processing",
           base_version=0, version=1, write_id="w1"),
        ev("t3", 10, "block-A", "indexingList.0.status", "workflow", old="processing",
           new="done", base_version=1, version=2),
        ev("t4", 12, "block-A", "indexingList.0.status", "polling_sync", old="done",
           new="error", base_version=2, version=3),
        ev("t5", 500, "block-A", "content", "workflow", old="hello", base_version=3,
           version=4),  # removed
        ev("t6", 530, "block-B", "indexingList.3.status", "instantiation", new="done"),
        ev("t7", 540, "block-B", "title", "user", new="B"),
    ]


def test_timeline_lists_transitions_in_commit_order_with_their_findings(store):
    con = store(history(), seed=5)
    rows = timeline(con, "block-A")
    ids = [r["event_id"] for r in rows]
    # t1 and t2 are one write (same version and ts): ingest order decides between them
    assert set(ids[:2]) == {"t1", "t2"} and ids[2:] == ["t3", "t4", "t5"]
    by_id = {r["event_id"]: r for r in rows}
    assert by_id["t4"]["findings"] == ["priority_inversion"]
    assert by_id["t3"]["findings"] == ["priority_inversion"]
    assert by_id["t1"]["findings"] == []
    assert by_id["t5"]["has_new"] is False and by_id["t5"]["old"] == "hello"
    assert by_id["t3"]["ts"] == at(10) and by_id["t3"]["version"] == 2
    assert [r["event_id"] for r in timeline(con, "block-A", "content")] == ["t1", "t5"]
    assert timeline(con, "nobody") == []


def test_replay_rebuilds_the_fields_as_of_a_time(store):
    con = store(history())
    assert replay(con, "block-A", at(-1)) == {}
    assert replay(con, "block-A", at(0)) == {
        "content": "hello", "indexingList.0.status": "processing"}
    assert replay(con, "block-A", at(11)) == {
        "content": "hello", "indexingList.0.status": "done"}
    assert replay(con, "block-A", at(100))["content"] == "hello"
    # the removed field is gone
    assert replay(con, "block-A", at(600)) == {"indexingList.0.status": "error"}


def test_owners_folds_list_indexes_and_puts_contested_fields_first(store):
    con = store(history())
    rows = owners(con)
    assert [r["field"] for r in rows] == [
        "indexingList.*.status", "content", "title"]
    first = rows[0]
    assert first["contested"] is True
    assert [w["writer"] for w in first["writers"]] == [
        "instantiation", "polling_sync", "user", "workflow"]
    assert first["writes"] == 4 and first["entities"] == 2
    assert rows[1]["contested"] is True and rows[2]["contested"] is False
    assert owners(store([])) == []


def test_views_do_not_depend_on_what_ran_before(store):
    con = store(history())
    alone = {
        "timeline": [r["event_id"] for r in timeline(con, "block-A")],
        "replay": replay(con, "block-A", at(100)),
    }
    # a check of another entity, a timeline of another one, a replay: in any order before
    check(con, entity="block-B")
    assert [r["event_id"] for r in timeline(con, "block-A")] == alone["timeline"]
    timeline(con, "block-B")
    assert replay(con, "block-A", at(100)) == alone["replay"]
    check(con)
    assert [r["event_id"] for r in timeline(con, "block-A")] == alone["timeline"]


def test_a_commit_order_handle_reads_its_own_scope(store):
    con = store(history())
    a = commit_order(con, entities=["block-A"])
    b = commit_order(con, entities=["block-B"])  # replaces the table a built
    assert a.rows("SELECT DISTINCT entity FROM transitions") == [{"entity": "block-A"}]
    assert b.rows("SELECT DISTINCT entity FROM transitions") == [{"entity": "block-B"}]
    whole = commit_order(con)
    assert len(whole.rows("SELECT seq FROM transitions")) == len(history())


def test_owners_folds_keyed_list_elements_like_indexes(store):
    con = store([
        ev("k1", 0, "flow-1", "nodes[block-A].data.content", "user", new="a"),
        ev("k2", 5, "flow-1", "nodes[block-B].data.content", "workflow", new="b"),
        ev("k3", 9, "flow-2", "nodes[a\\]b].data.content", "user", new="c"),
        ev("k4", 9, "flow-2", "nodes[7].items.3.status", "user", new="d"),
        ev("k5", 9, "flow-2", "[root-key].x", "user", new="e"),
    ])
    rows = {r["field"]: r for r in owners(con)}
    assert set(rows) == {"nodes[*].data.content", "nodes[*].items.*.status", "[*].x"}
    content = rows["nodes[*].data.content"]
    assert (content["writes"], content["entities"], content["contested"]) == (3, 2, True)
