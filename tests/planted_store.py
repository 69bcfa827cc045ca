"""A store of N generated events with anomalies planted at known places, made by DuckDB
itself in seconds: what bench/detect.py measures the detectors on, and what the tests that
need a store larger than memory use (tests/queries/test_memory_limit.py)."""

from __future__ import annotations

import time
from pathlib import Path

# Per 1000 entities: the planted anomalies (entity class c = entity number % 1000).
#   c=2 (versioned)    read version 3, wrote over version 4        -> lost_update
#   c=3 (unversioned)  old value that no write left               -> chain_break
#   c=4 (versioned)    two writes both produce version 5          -> version_conflict
#   c=5 (unversioned)  read the same value as the write before    -> lost_update + chain_break
#   c=6 (versioned)    status goes v0 -> v3 -> v0 within 15 s, put back
#                      by another writer                          -> oscillation
#   c=8 (versioned)    user, then polling_sync 15 s later (x3)     -> priority_inversion x3
#   c=9 (unversioned)  data produced an hour before the write before -> stale_overwrite
EXPECTED_PER_1000 = {
    "lost_update": 2,
    "chain_break": 2,
    "version_conflict": 1,
    "oscillation": 1,
    "priority_inversion": 3,
    "stale_overwrite": 1,
}

GENERATE_SQL = """
INSERT INTO events (seq, event_id, ts, entity, entity_type, field, change, old, new, writer,
                    actor, write_id, base_version, version, source_ts, priority, trace_id,
                    span_id, attrs, source, line)
WITH g AS (
    -- event j of entity k; an entity's writes are 120 s apart (beyond every window), except
    -- in the classes that plant a burst, whose writes are 5 s apart
    SELECT i, $k AS k, $j AS j, ($k) % 1000 AS c
    FROM range($n) r(i)
),
t AS (
    SELECT *, TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_seconds(k % 86400)
              + to_seconds(CASE WHEN c IN (6, 8) THEN j * 5 ELSE j * 120 END) AS ts
    FROM g
)
SELECT
    i, 'e' || i, ts, 'block-' || k, 'block',
    ['status', 'content', 'indexingList.0.status'][j % 3 + 1],
    CASE WHEN j < 3 THEN 'added' ELSE 'changed' END,
    CASE WHEN j < 3 THEN NULL
         WHEN c = 3 AND j = 7 THEN '"zz"'
         WHEN c = 5 AND j = 7 THEN '"v1"'
         WHEN c = 6 AND j = 9 THEN '"v0"'
         ELSE '"v' || (j - 3) || '"' END,
    CASE WHEN c = 6 AND j = 6 THEN '"v0"' ELSE '"v' || j || '"' END,
    CASE WHEN c = 6 THEN (CASE WHEN j < 6 THEN 'instantiation' ELSE 'workflow' END)
         WHEN c = 8 THEN (CASE WHEN j < 5 THEN 'user' ELSE 'polling_sync' END)
         ELSE ['user', 'workflow', 'instantiation', 'polling_sync'][(hash(i) % 4)::BIGINT + 1]
    END,
    'actor-' || (i % 7), 'w' || i,
    CASE WHEN k % 2 = 0 THEN (CASE WHEN c = 2 AND j = 6 THEN 3
                                   WHEN c = 4 AND j = 5 THEN 4 ELSE j END) END,
    CASE WHEN k % 2 = 0 THEN (CASE WHEN c = 4 AND j = 5 THEN 5 ELSE j + 1 END) END,
    CASE WHEN c = 9 THEN ts - (CASE WHEN j = 6 THEN INTERVAL 1 HOUR ELSE INTERVAL 0 SECOND END)
    END,
    NULL, NULL, NULL, NULL, 'bench', i
FROM t
"""


def expected(n: int) -> dict[str, int]:
    """The findings per detector in a store of ``n`` events: the planted anomalies."""
    return {d: per * (n // 10 // 1000) for d, per in EXPECTED_PER_1000.items()}


# Where an entity's ten events lie in the store (seq order), as (k, j) of event i:
#   clustered    one after another, entity by entity
#   interleaved  spread over the whole store, one each tenth of it, as in a service where
#                every entity is written now and then all day long: no part of the file
#                holds only a few entities, so a scan for some entities reads all of it
LAYOUTS = {
    "clustered": ("i // 10", "i % 10"),
    "interleaved": ("i % $entities", "i // $entities"),
}


def layout_problem(n: int, layout: str) -> str | None:
    """Why ``n`` events cannot be laid out as ``layout``; None when they can. Interleaved,
    entity k's events are k + j × n/10: only whole entities of ten fit."""
    if layout == "interleaved" and n % 10:
        return f"an interleaved store needs a multiple of 10 events, not {n}"
    return None


def generate(path: Path, n: int, layout: str = "clustered") -> float:
    """Make the store at ``path`` with ``n`` events (n/10 entities) laid out as ``layout``
    says (`LAYOUTS`); seconds it took."""
    from collectors.store import open_store

    problem = layout_problem(n, layout)
    if problem:
        raise ValueError(problem)
    k, j = LAYOUTS[layout]
    sql = (GENERATE_SQL.replace("$k", k).replace("$j", j)
           .replace("$entities", str(n // 10)).replace("$n", str(int(n))))
    if path.exists():
        path.unlink()
    started = time.perf_counter()
    con = open_store(path)
    try:
        con.execute(sql)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return time.perf_counter() - started
