"""`audit pg pull`: every captured row into the store exactly once, also when capture ids
commit out of order."""

from __future__ import annotations

import psycopg
import pytest

from collectors.pg import install, pull
from collectors.store import open_store
from frontends.cli import main

COUNTERS = "CREATE TABLE counters (id text PRIMARY KEY, value integer, version integer)"


@pytest.fixture
def counters(pg_dsn) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(COUNTERS)
        conn.execute("INSERT INTO counters VALUES ('a', 0, 1), ('b', 0, 1)")
    install(pg_dsn, "counters", version_column="version")
    return pg_dsn


def stored(con) -> list[tuple]:
    return con.execute(
        "SELECT entity, field, old::VARCHAR, new::VARCHAR, writer, base_version, version "
        "FROM events ORDER BY seq").fetchall()


def capture_ids(con) -> list[int]:
    return sorted(con.execute(
        "SELECT CAST(attrs->'pg'->>'capture_id' AS INTEGER) FROM events").fetchall())


def test_a_transaction_that_commits_after_a_later_id_was_pulled_is_not_skipped(counters, tmp_path):
    con = open_store(tmp_path / "store.duckdb")
    slow = psycopg.connect(counters)
    # The slow transaction takes the lower capture id and holds it uncommitted ...
    slow.execute("SET LOCAL audit.writer = 'slow'")
    slow.execute("UPDATE counters SET value = 1, version = 2 WHERE id = 'a'")
    # ... while a later one takes a higher id and commits first.
    with psycopg.connect(counters) as fast:
        fast.execute("SET LOCAL audit.writer = 'fast'")
        fast.execute("UPDATE counters SET value = 5, version = 2 WHERE id = 'b'")
    first = pull(counters, con)
    assert (first.ingested, [w for *_, w, _, _ in stored(con)]) == (1, ["fast"])
    assert capture_ids(con) == [(2,)]

    slow.commit()
    slow.close()
    second = pull(counters, con)
    assert second.ingested == 1  # the late row, although a higher id was pulled before it
    assert capture_ids(con) == [(1,), (2,)]

    third = pull(counters, con)
    assert (third.ingested, third.duplicates) == (0, 0)
    assert sorted(stored(con)) == [
        ("counters:a", "value", "0", "1", "slow", 1, 2),
        ("counters:b", "value", "0", "5", "fast", 1, 2),
    ]
    con.close()


def test_a_rolled_back_transaction_leaves_nothing_and_holds_nothing_back(counters, tmp_path):
    con = open_store(tmp_path / "store.duckdb")
    with psycopg.connect(counters) as conn:
        conn.execute("UPDATE counters SET value = 9 WHERE id = 'a'")
        conn.rollback()
        conn.execute("UPDATE counters SET value = 3 WHERE id = 'b'")
    assert pull(counters, con).ingested == 1
    assert [new for _, _, _, new, *_ in stored(con)] == ["3"]
    con.close()


def test_two_stores_each_get_everything_once_and_databases_never_share_an_event_id(
        counters, pg_server, tmp_path):
    with psycopg.connect(counters, autocommit=True) as conn:
        for n in range(5):
            conn.execute("UPDATE counters SET value = %s, version = version + 1", [n + 1])
    one, two = (open_store(tmp_path / f"{name}.duckdb") for name in ("one", "two"))
    summaries = [pull(counters, one, batch_rows=3), pull(counters, two)]
    assert [s.ingested for s in summaries] == [10, 10]
    assert sum(s.rejected for s in summaries) == 0
    assert stored(one) == stored(two)

    with psycopg.connect(pg_server.dsn(), autocommit=True) as admin:
        admin.execute("CREATE DATABASE other_capture")
    other = pg_server.dsn("other_capture")
    try:
        with psycopg.connect(other, autocommit=True) as conn:
            conn.execute(COUNTERS)
            conn.execute("INSERT INTO counters VALUES ('a', 0, 1)")
        install(other, "counters", version_column="version")
        with psycopg.connect(other, autocommit=True) as conn:
            conn.execute("UPDATE counters SET value = 1, version = 2")
        assert pull(other, one).ingested == 1  # capture id 1 again, but another database
    finally:
        with psycopg.connect(pg_server.dsn(), autocommit=True) as admin:
            admin.execute("DROP DATABASE other_capture WITH (FORCE)")
    (ids,) = one.execute("SELECT count(DISTINCT event_id) FROM events").fetchall()
    assert ids == (11,)
    one.close()
    two.close()


def test_the_pulled_events_are_contract_events(counters, tmp_path):
    with psycopg.connect(counters) as conn:
        conn.execute("SET LOCAL audit.writer = 'workflow'")
        conn.execute("SET LOCAL audit.actor = 'engine-1'")
        conn.execute("SET LOCAL audit.source_ts = '2026-03-01T12:00:00Z'")
        conn.execute("UPDATE counters SET value = 1, version = 2 WHERE id = 'a'")
    con = open_store(tmp_path / "store.duckdb")
    pull(counters, con)
    (row,) = con.execute(
        "SELECT entity, entity_type, field, change, writer, actor, base_version, version,"
        " source_ts = TIMESTAMPTZ '2026-03-01 12:00:00+00', write_id LIKE 'pg-%',"
        " attrs->'pg'->>'op' FROM events").fetchall()
    assert row == ("counters:a", "counters", "value", "changed", "workflow", "engine-1", 1, 2,
                   True, True, "UPDATE")
    con.close()


def test_the_cli_pulls_and_says_what_it_did(counters, tmp_path, capsys):
    with psycopg.connect(counters, autocommit=True) as conn:
        conn.execute("UPDATE counters SET value = 1, version = 2 WHERE id = 'a'")
    db = tmp_path / "store.duckdb"
    for expected in ("pulled 1 transitions", "pulled 0 transitions"):
        with pytest.raises(SystemExit) as exit_:
            main(["pg", "pull", "--dsn", counters, "--db", str(db)])
        assert exit_.value.code == 0
        assert expected in capsys.readouterr().out


def test_pulling_from_a_database_without_capture_is_one_line_exit_2(pg_dsn, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["pg", "pull", "--dsn", pg_dsn, "--db", str(tmp_path / "store.duckdb")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: nothing is captured") and err.count("\n") == 1
