"""timeline, replay and owners: the store seen per entity, per moment and per field."""

from __future__ import annotations

from detect_histories import at, ev

from queries import owners, replay, timeline


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
