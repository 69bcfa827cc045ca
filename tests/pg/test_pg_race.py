"""The read-modify-write race, captured by the trigger and found by `audit check`.

Eight threads increment shared rows in READ COMMITTED transactions: read value and
version, write value + 1 and version + 1. A barrier between the read and the write makes
the threads of one round all read before any of them writes, so the race is certain rather
than timing-dependent. Without a version check, every write that overwrote a commit it had
not read produced a version another write had produced already: the lost updates are
exactly writes − distinct (row, version) pairs. With compare-and-swap (the write requires
the version read, else it reads again) there are none.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter

import psycopg
import pytest

import audit
from audit import pg as audit_pg
from collectors.pg import install
from collectors.store import open_store
from frontends.cli import main

THREADS, ROWS, ROUNDS = 8, 3, 8


class _Stale(Exception):
    """A compare-and-swap write found another version than the one it read."""


def increments(dsn: str, *, compare_and_swap: bool) -> list[tuple[str, int]]:
    """Run the race; the (row, version) every committed write produced."""
    barrier = threading.Barrier(THREADS)
    produced: list[tuple[str, int]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        rows = random.Random(n)
        try:
            with psycopg.connect(dsn) as conn, audit.writer(f"worker-{n}"):
                for _ in range(ROUNDS):
                    row, first = f"r{rows.randrange(ROWS)}", True
                    while True:
                        try:
                            with conn.transaction():
                                audit_pg.set_local(conn)
                                value, version = conn.execute(
                                    "SELECT value, version FROM counters WHERE id = %s", [row]
                                ).fetchone()
                                if first:
                                    barrier.wait(timeout=60)
                                    first = False
                                guard = " AND version = %s" if compare_and_swap else ""
                                cur = conn.execute(
                                    "UPDATE counters SET value = %s, version = %s "
                                    f"WHERE id = %s{guard}",
                                    [value + 1, version + 1, row,
                                     *([version] if compare_and_swap else [])],
                                )
                                if cur.rowcount == 0:
                                    raise _Stale
                        except _Stale:
                            continue
                        with lock:
                            produced.append((row, version + 1))
                        break
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return produced


@pytest.mark.parametrize("compare_and_swap", [False, True], ids=["unchecked", "cas"])
def test_every_unseen_overwrite_is_a_lost_update_and_cas_leaves_none(
        pg_dsn, tmp_path, capsys, compare_and_swap):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE counters (id text PRIMARY KEY, value integer NOT NULL, "
                     "version integer NOT NULL)")
        conn.execute("INSERT INTO counters SELECT 'r' || n, 0, 1 FROM generate_series(0, %s) n",
                     [ROWS - 1])
    install(pg_dsn, "counters", version_column="version")
    produced = increments(pg_dsn, compare_and_swap=compare_and_swap)
    assert len(produced) == THREADS * ROUNDS

    db = tmp_path / "store.duckdb"
    for argv in (["pg", "pull", "--dsn", pg_dsn], ["check", "--format", "json"]):
        with pytest.raises(SystemExit):
            main([*argv, "--db", str(db)])
    findings = json.loads(capsys.readouterr().out.splitlines()[-1])
    con = open_store(db, read_only=True)
    version_of = {event_id: (entity, version) for event_id, entity, version in
                  con.execute("SELECT event_id, entity, version FROM events").fetchall()}
    con.close()
    lost = Counter(version_of[f["event_ids"][-1]] for f in findings
                   if f["detector"] == "lost_update")
    # Each (row, version) produced k times: k - 1 writes overwrote a commit they had not read.
    expected = Counter({(f"counters:{row}", version): k - 1
                        for (row, version), k in Counter(produced).items() if k > 1})
    assert lost == expected
    assert sum(lost.values()) == len(produced) - len(set(produced))
    if compare_and_swap:
        assert [f for f in findings if f["detector"] in ("lost_update", "version_conflict")] == []
    else:
        # At least THREADS - ROWS of each round's writes met another on the same row.
        assert sum(lost.values()) >= (THREADS - ROWS) * ROUNDS
