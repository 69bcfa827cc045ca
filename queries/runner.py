"""Run the canned detector queries and turn their rows into findings.

The SQL files beside this module are the detectors; this module only feeds them their
settings (as DuckDB variables, so the same files run unchanged in the DuckDB shell), builds
the `transitions` table once per run, and dresses each result row as a `Finding` with its
witnesses and a plain-words message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import duckdb

from audit.config import Config, load_config
from audit.errors import AuditError
from queries.explain import explain
from queries.finding import Finding
from queries.values import parse_value, rfc3339, to_timestamp

DETECTORS: tuple[str, ...] = (
    "lost_update",
    "stale_overwrite",
    "oscillation",
    "priority_inversion",
    "version_conflict",
    "chain_break",
)

# Data lost or contradicted: error. A fight that may settle, or a rule broken without
# (yet) losing data: warning. A chain that does not link up is often the shadow of a lost
# update on the same pair, or a gap in the instrumentation: warning.
SEVERITY: dict[str, str] = {
    "lost_update": "error",
    "stale_overwrite": "error",
    "version_conflict": "error",
    "oscillation": "warning",
    "priority_inversion": "warning",
    "chain_break": "warning",
}

# Columns every detector returns; the others are facts handed to the explanation.
_COMMON = ("entity", "field", "seqs")

# Per-witness facts, looked up by seq once the detectors have named their witnesses.
_WITNESS_SQL = """
SELECT seq, event_id, ts, entity_type, field, change, old, new, writer, actor, write_id,
       version, base_version, source_ts, priority, trace_id, span_id
FROM events
WHERE seq IN (SELECT unnest(?::BIGINT[]))
"""


@cache
def sql(name: str) -> str:
    """The text of queries/<name>.sql."""
    return resources.files("queries").joinpath(f"{name}.sql").read_text(encoding="utf-8")


def resolve_detectors(detectors: Iterable[str] | None) -> list[str]:
    """The detectors to run, in canonical order; an unknown name is an AuditError."""
    if not detectors:
        return list(DETECTORS)
    wanted = list(dict.fromkeys(detectors))
    unknown = [d for d in wanted if d not in DETECTORS]
    if unknown:
        raise AuditError(
            f"unknown detector {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(DETECTORS)}"
        )
    return [d for d in DETECTORS if d in wanted]


def set_variables(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    *,
    entity: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    suspects_only: bool = False,
) -> None:
    """Hand the settings and scope to the SQL files as DuckDB variables."""
    writers = sorted(config.writer_priorities.items())
    con.execute("SET VARIABLE audit_suspects_only = ?::BOOLEAN", [suspects_only])
    con.execute("SET VARIABLE audit_entity = ?::VARCHAR", [entity])
    con.execute("SET VARIABLE audit_since = ?::TIMESTAMPTZ", [since])
    con.execute("SET VARIABLE audit_until = ?::TIMESTAMPTZ", [until])
    con.execute("SET VARIABLE audit_oscillation_window_s = ?::DOUBLE",
                [config.oscillation_window_s])
    con.execute("SET VARIABLE audit_oscillation_min_changes = ?::BIGINT",
                [config.oscillation_min_changes])
    con.execute("SET VARIABLE audit_priority_window_s = ?::DOUBLE", [config.priority_window_s])
    con.execute("SET VARIABLE audit_default_priority = ?::INTEGER", [config.default_priority])
    con.execute(
        "SET VARIABLE audit_writer_priorities = map(?::VARCHAR[], ?::INTEGER[])",
        [[w for w, _ in writers], [p for _, p in writers]],
    )


def build_transitions(
    con: duckdb.DuckDBPyConnection,
    config: Config | None = None,
    *,
    entity: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    suspects_only: bool = False,
) -> None:
    """Materialise the `transitions` temp table (commit order, with prev) once.

    ``suspects_only`` keeps just the transitions a detector can name (what `check` needs);
    otherwise the table holds the whole history in scope (what timeline and replay need).
    """
    set_variables(con, config or Config(), entity=entity, since=since, until=until,
                  suspects_only=suspects_only)
    con.execute(sql("transitions"))


def check(
    con: duckdb.DuckDBPyConnection,
    *,
    detectors: Sequence[str] | None = None,
    entity: str | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    config: Config | None = None,
    suspects_only: bool = True,
) -> list[Finding]:
    """Run the detectors over the store behind ``con``; findings in time order.

    ``since``/``until`` keep the findings whose witnesses overlap that range; the writes
    just outside it still serve as context. ``config`` defaults to ``./audit.toml``.
    The detectors need only the suspect transitions; ``suspects_only=False`` leaves the
    whole history in ``transitions`` (same findings), for callers that read it afterwards.
    """
    names = resolve_detectors(detectors)
    config = config if config is not None else load_config(None)
    since_ts = to_timestamp(since, "since")
    until_ts = to_timestamp(until, "until")
    if since_ts and until_ts and since_ts > until_ts:
        raise AuditError("--since is after --until")
    build_transitions(con, config, entity=entity, since=since_ts, until=until_ts,
                      suspects_only=suspects_only)
    raw: list[tuple[str, dict[str, Any]]] = []
    for name in names:
        raw.extend((name, row) for row in _rows(con, sql(name)))
    witnesses = _witnesses(con, {s for _, row in raw for s in row["seqs"]})
    order = {name: i for i, name in enumerate(DETECTORS)}
    keyed = []
    for name, row in raw:
        start, end = _span(row["seqs"], witnesses)
        if (since_ts is None or end >= since_ts) and (until_ts is None or start <= until_ts):
            found = _finding(name, row, witnesses, config, start, end)
            keyed.append(((start, found.entity, found.field, order[name], found.event_ids), found))
    keyed.sort(key=lambda pair: pair[0])
    return [found for _, found in keyed]


def _rows(con: duckdb.DuckDBPyConnection, query: str) -> list[dict[str, Any]]:
    cur = con.execute(query)
    columns = [d[0] for d in cur.description]
    return [dict(zip(columns, values, strict=True)) for values in cur.fetchall()]


def _witnesses(con: duckdb.DuckDBPyConnection, seqs: set[int]) -> dict[int, dict[str, Any]]:
    if not seqs:
        return {}
    cur = con.execute(_WITNESS_SQL, [sorted(seqs)])
    columns = [d[0] for d in cur.description]
    out = {}
    for values in cur.fetchall():
        row = dict(zip(columns, values, strict=True))
        out[row["seq"]] = {
            "_ts": row["ts"],
            "event_id": row["event_id"],
            "ts": rfc3339(row["ts"]),
            "writer": row["writer"],
            "actor": row["actor"],
            "field": row["field"],
            "change": row["change"],
            "old": parse_value(row["old"]),
            "new": parse_value(row["new"]),
            "has_old": row["old"] is not None,
            "has_new": row["new"] is not None,
            "version": row["version"],
            "base_version": row["base_version"],
            "source_ts": rfc3339(row["source_ts"]),
            "priority": row["priority"],
            "trace_id": row["trace_id"],
            "span_id": row["span_id"],
            "write_id": row["write_id"],
            "entity_type": row["entity_type"],
            "seq": row["seq"],
        }
    return out


def _finding(
    name: str,
    row: dict[str, Any],
    witnesses: dict[int, dict[str, Any]],
    config: Config,
    start: datetime,
    end: datetime,
) -> Finding:
    wits = [witnesses[s] for s in row["seqs"]]
    facts = {k: v for k, v in row.items() if k not in _COMMON}
    writers = list(dict.fromkeys(w["writer"] for w in wits))
    entity_type = next((w["entity_type"] for w in wits if w["entity_type"]), None)
    return Finding(
        detector=name,
        entity=row["entity"],
        field=row["field"],
        writers=writers,
        event_ids=[w["event_id"] for w in wits],
        first_ts=rfc3339(start),
        last_ts=rfc3339(end),
        severity=SEVERITY[name],
        message=explain(name, row["entity"], row["field"], wits, facts, config),
        entity_type=entity_type,
        witnesses=[_public(w) for w in wits],
    )


_PUBLIC_KEYS = ("event_id", "ts", "writer", "actor", "field", "change", "old", "new",
                "version", "base_version", "source_ts", "priority", "trace_id", "span_id",
                "write_id")


def _public(witness: dict[str, Any]) -> dict[str, Any]:
    return {k: witness[k] for k in _PUBLIC_KEYS}


def _span(seqs: list[int], witnesses: dict[int, dict[str, Any]]) -> tuple[datetime, datetime]:
    times = [witnesses[s]["_ts"] for s in seqs]
    return min(times), max(times)
