"""Entity buckets: every detector reads one entity's events only, so sorting the entities
range of names by range (queries/transitions.sql) finds exactly what one sort of the whole
store finds. `check` relies on it to keep the sort within its memory
(tests/queries/test_memory_limit.py)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from busy_histories import busy_history
from detect_histories import load, many_of_each

from audit.config import Config
from collectors.store import open_store
from queries.commit_order import Scope, commit_order, dict_rows, scope_size
from queries.runner import DETECTORS, detect, entity_buckets


def sorting_last(events: list[dict]) -> list[dict]:
    """The same histories under entity names that sort after every other: the last entity
    range holds them, so that each detector is held beyond the first range too (the
    entities of `many_of_each` all sort before those of `busy_history`)."""
    return [{**e, "entity": f"zz-{e['entity']}", "event_id": f"zz-{e['event_id']}"}
            for e in events]


HISTORIES = many_of_each(12) + busy_history(blocks=60) + sorting_last(many_of_each(12))


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    db = tmp_path_factory.mktemp("buckets") / "s.duckdb"
    load(db, HISTORIES, seed=5)
    return db


@pytest.fixture(scope="module")
def whole(db):
    with open_store(db, read_only=True) as con:
        findings = detect(commit_order(con, Config(), suspects_only=True))
    assert {f.detector for f in findings} == set(DETECTORS)
    return [f.to_dict() for f in findings]


@pytest.mark.parametrize("buckets", [2, 3, 7])
def test_the_buckets_find_what_the_whole_sort_finds(db, whole, buckets):
    with open_store(db, read_only=True) as con:
        ranges: list[dict] = []  # what each sort read, told after it (range_events)

        def sorted_one(done: int, total: int) -> None:
            [seen] = dict_rows(con.execute("""
                SELECT min(entity) AS low, max(entity) AS high,
                       count(DISTINCT entity) AS entities
                FROM range_events"""))
            ranges.append(seen)

        order = commit_order(con, Config(), suspects_only=True, buckets=buckets,
                             progress=sorted_one)
        [every] = order.rows("SELECT count(DISTINCT entity) AS entities FROM scoped_events")
        # each sort read one range of entities: the ranges follow one another, and together
        # hold every entity once
        assert len(ranges) == buckets
        assert all(r["entities"] < every["entities"] for r in ranges)
        assert all(a["high"] < b["low"] for a, b in itertools.pairwise(ranges))
        assert sum(r["entities"] for r in ranges) == every["entities"]
        # once built, `range_events` is the whole scope again (what version_conflict reads
        # outside `detect`)
        assert order.rows("SELECT count(DISTINCT entity) AS entities FROM range_events") \
            == [every]
        found = detect(order)
        assert [f.to_dict() for f in found] == whole
        # every detector found something in the last range, not only in the first
        last = order.ranges[-1][0]
        assert {f.detector for f in found if f.entity >= last} == set(DETECTORS)


def test_one_entity_heavier_than_a_bucket_is_sorted_once(tmp_path, whole):
    """Ranges are cut at quantiles of the events: an entity holding most of them repeats a
    cut, and the ranges between repeated cuts are empty, so it is still sorted once."""
    db = tmp_path / "heavy.duckdb"
    heavy = [{**e, "entity": "heavy", "event_id": f"heavy-{i}"}
             for i, e in enumerate(busy_history(blocks=60, seed=9))]
    load(db, HISTORIES + heavy, seed=5)
    with open_store(db, read_only=True) as con:
        alone = detect(commit_order(con, Config(), suspects_only=True))
        order = commit_order(con, Config(), suspects_only=True, buckets=7)
        # the last cuts all fell on it: the ranges between are empty
        assert order.ranges[-1] == ("heavy", None) and ("heavy", "heavy") in order.ranges
        assert [f.to_dict() for f in detect(order)] == [f.to_dict() for f in alone]
        assert len(alone) > len(whole)  # the heavy entity's own findings are among them


def test_an_empty_scope_in_buckets_finds_nothing(db):
    with open_store(db, read_only=True) as con:
        order = commit_order(con, Config(), entities=["no-such-entity"], buckets=3)
        assert detect(order) == []


@pytest.mark.parametrize(("events", "buckets"), [(100_000, 6), (1_000_000, 55), (10**7, 64)])
def test_buckets_follow_the_limit_up_to_a_cap(events, buckets):
    """Each bucket's sort gets a third of the memory limit (~180 bytes an event), and a limit
    far too small for the store gets MAX_BUCKETS sorts, not one per few thousand events."""
    con = duckdb.connect(config={"memory_limit": "10MB"})  # DuckDB: "9.5 MiB"
    con.execute(f"CREATE VIEW events AS SELECT range AS seq FROM range({events})")
    assert entity_buckets(con) == buckets


def test_a_time_range_is_sorted_in_the_buckets_its_own_entities_need():
    """With --since/--until only the entities written in the range are sorted (with their
    whole histories, queries/transitions.sql): the buckets follow their events, not the
    store's. 100k events of 1,000 entities, one written each second."""
    con = duckdb.connect(config={"memory_limit": "10MB"})
    con.execute("""
        CREATE VIEW applied_events AS
        SELECT range AS seq, 'e' || (range % 1000) AS entity, 'f' AS field,
               TIMESTAMPTZ '2026-01-01 00:00:00+00' + range * INTERVAL 1 SECOND AS ts,
               'w' AS writer, NULL::VARCHAR AS write_id, 'changed' AS change,
               NULL::VARCHAR AS old, NULL::VARCHAR AS new, NULL::BIGINT AS version,
               NULL::BIGINT AS base_version, NULL::TIMESTAMPTZ AS source_ts,
               NULL::INTEGER AS priority
        FROM range(100000);
        CREATE VIEW events AS SELECT * FROM applied_events;
    """)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    last = start + timedelta(seconds=99_999)
    assert entity_buckets(con) == 6  # as test_buckets_follow_the_limit_up_to_a_cap
    assert entity_buckets(con, since=start) == 6  # every entity, so every event
    assert entity_buckets(con, since=last) == 1  # one entity's 100 events
    assert entity_buckets(con, until=start + timedelta(seconds=499)) == 3  # half of them


def test_counting_a_scope_leaves_a_built_order_reading_its_own(db):
    """scope_size sets the scope's variables on the connection; a commit order built before
    must still read its own scope (it builds again), not the one just counted."""
    with open_store(db, read_only=True) as con:
        order = commit_order(con, Config(), entities=["A-0"])
        [own] = order.rows("SELECT count(*) AS n FROM scoped_events")
        assert scope_size(con, Scope()) > own["n"]
        assert order.rows("SELECT count(*) AS n FROM scoped_events") == [own]
