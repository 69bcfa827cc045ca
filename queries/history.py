"""Looking back at one entity or the whole store: timeline, replay, owners.

Timeline and replay read the entity's commit order (queries/commit_order.py), which they
build themselves, so "in commit order" means the same thing everywhere (docs/contract.md §2)
and nothing depends on what ran before on the connection.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from audit.config import Config, load_config
from queries.commit_order import commit_order, dict_rows
from queries.paths import fold
from queries.runner import DETECTORS, detect
from queries.values import parse_value, rfc3339, to_timestamp

_TIMELINE_SQL = """
SELECT t.seq, e.event_id, e.ts, e.field, e.change, e.old, e.new, t.blind, e.writer, e.actor,
       e.write_id, e.version, e.base_version, e.source_ts, e.priority, e.trace_id,
       e.entity_type, e.attrs
FROM transitions t JOIN events e USING (seq)
WHERE $field::VARCHAR IS NULL OR t.field = $field
ORDER BY t.order_version, t.ts, t.seq
"""

_REPLAY_SQL = """
SELECT field, new
FROM transitions
WHERE ts <= $at
QUALIFY row_number() OVER (PARTITION BY field ORDER BY rn DESC) = 1
ORDER BY field
"""

# Folded paths (queries/paths.py) come in as a mapping from each path in the store.
_OWNERS_SQL = """
WITH paths AS (
    SELECT unnest($paths::VARCHAR[]) AS path, unnest($folded::VARCHAR[]) AS field
),
folded AS (
    SELECT p.field, e.writer, e.entity
    FROM applied_events e JOIN paths p ON e.field = p.path
),
per_writer AS (
    SELECT field, writer, count(*) AS writes, count(DISTINCT entity) AS entities
    FROM folded GROUP BY field, writer
),
per_field AS (
    SELECT field, count(DISTINCT entity) AS entities FROM folded GROUP BY field
)
SELECT w.field,
       list({'writer': w.writer, 'writes': w.writes, 'entities': w.entities}
            ORDER BY w.writes DESC, w.writer) AS writers,
       sum(w.writes)::BIGINT AS writes,
       any_value(f.entities) AS entities
FROM per_writer w JOIN per_field f USING (field)
GROUP BY w.field
ORDER BY len(writers) > 1 DESC, len(writers) DESC, writes DESC, w.field
"""


def entity_exists(con: duckdb.DuckDBPyConnection, entity: str) -> bool:
    """Whether the store has any event of ``entity``."""
    return bool(con.execute("SELECT 1 FROM events WHERE entity = ? LIMIT 1", [entity]).fetchall())


def timeline(
    con: duckdb.DuckDBPyConnection,
    entity: str,
    field: str | None = None,
    *,
    config: Config | None = None,
) -> list[dict[str, Any]]:
    """The entity's transitions in commit order, each with the detectors it is a witness of.

    Every transition is a dict: seq, event_id, ts, field, change, old, new (JSON values;
    ``has_old``/``has_new`` tell an absent value from JSON null, ``blind`` an old the writer
    did not read), writer, actor, write_id, version, base_version, source_ts, priority,
    trace_id, entity_type, attrs (parsed JSON; an imported event names its snapshot file
    there), and ``findings``: the names of the detectors whose findings
    name it. ``config`` defaults to ``./audit.toml``.
    """
    config = config if config is not None else load_config(None)
    # The whole history, not only the suspects: the query below lists every transition.
    order = commit_order(con, config, entities=[entity])
    marks: dict[str, list[str]] = {}
    for f in detect(order):
        for event_id in f.event_ids:
            marks.setdefault(event_id, []).append(f.detector)
    out = []
    for row in order.rows(_TIMELINE_SQL, {"field": field}):
        row["has_old"] = row["old"] is not None
        row["has_new"] = row["new"] is not None
        row["old"] = parse_value(row["old"])
        row["new"] = parse_value(row["new"])
        row["attrs"] = parse_value(row["attrs"])
        row["ts"] = rfc3339(row["ts"])
        row["source_ts"] = rfc3339(row["source_ts"])
        found = set(marks.get(row["event_id"], ()))
        row["findings"] = [d for d in DETECTORS if d in found]
        out.append(row)
    return out


def replay(
    con: duckdb.DuckDBPyConnection, entity: str, at: datetime | str
) -> dict[str, Any]:
    """The entity's field values as of ``at``: the last transition of each field (in commit
    order) among those applied at or before ``at``. A removed field is left out."""
    at_ts = to_timestamp(at, "--at")
    rows = commit_order(con, entities=[entity]).rows(_REPLAY_SQL, {"at": at_ts})
    return {row["field"]: parse_value(row["new"]) for row in rows if row["new"] is not None}


def owners(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Which writers write which fields, contested first. List elements fold to ``*``, by
    index or by key: ``indexingList.*.status``, ``nodes[*].data.content``.

    Each item: field, writers (list of {writer, writes, entities}, busiest first), writes,
    entities, contested (more than one writer).
    """
    paths = [p for (p,) in con.execute("SELECT DISTINCT field FROM applied_events").fetchall()]
    rows = dict_rows(con.execute(_OWNERS_SQL, {"paths": paths,
                                                "folded": [fold(p) for p in paths]}))
    for row in rows:
        row["contested"] = len(row["writers"]) > 1
    return rows
