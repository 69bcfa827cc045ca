"""Run the canned detector queries and turn their rows into findings.

The SQL files beside this module are the detectors. A detector's row names its witnesses
(``seqs``) and carries what it measured in its other columns: those become the finding's
facts. This module builds the commit order once per run (queries/commit_order.py), looks
the witnesses up, and renders each finding's message from its facts and witnesses.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import duckdb

from audit import timestamps
from audit.config import Config, load_config
from audit.errors import AuditError
from queries.commit_order import (
    CommitOrder,
    Progress,
    Scope,
    commit_order,
    scope_size,
    sql,
)
from queries.explain import render
from queries.finding import Finding, Witness
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
# update on the same pair, or a gap in the instrumentation: warning. A detector whose rows
# carry a `severity` column sets it per finding (lost_update: warning when the writes
# converge).
SEVERITY: dict[str, str] = {
    "lost_update": "error",
    "stale_overwrite": "error",
    "version_conflict": "error",
    "oscillation": "warning",
    "priority_inversion": "warning",
    "chain_break": "warning",
}

# A check sorts a DuckDB store's entities in buckets, ranges of entity names
# (queries/transitions.sql), each small enough that its sort takes at most a third of the
# connection's memory limit (the rest is for the aggregates beside it): the sort holds
# about this many bytes an event. A bucket more costs one more scan of the store; a sort
# that spills costs more (README, Speed: bench/detect.py).
SORT_BYTES_PER_EVENT = 180
# Past this many buckets, reading the store once more per bucket costs more than the sorts
# spilling would: a limit far too small for the store gets this many sorts that spill.
MAX_BUCKETS = 64
_UNITS = {"bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}

# Detectors that read the events themselves (`range_events`: a fork spans fields), not
# the commit order's suspects: run once for each entity range the order was sorted in, so
# that their aggregates hold one range's events too (queries/transitions.sql).
_PER_RANGE = frozenset({"version_conflict"})

# Columns that are not facts: where the finding is, its witnesses, its severity.
_NOT_FACTS = ("entity", "field", "seqs", "severity")

# The witnesses, looked up by seq once the detectors have named them. `ts_us` orders them
# (NULL for ±infinity, which Python's datetime cannot hold).
_WITNESS_SQL = """
SELECT seq, event_id, ts, epoch_us(ts) AS ts_us, entity_type, field, change, old, new,
       change = 'changed' AND old IS NULL AS blind, writer, actor, write_id, version,
       base_version, source_ts, priority, trace_id, span_id, attrs
FROM events
WHERE seq IN (SELECT unnest(?::BIGINT[]))
"""


@dataclass(frozen=True)
class _Looked:
    """A witness with what the runner needs beside it."""

    witness: Witness
    moment: float  # microseconds since the epoch; ±inf for ±infinity
    entity_type: str | None


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


def check(
    con: duckdb.DuckDBPyConnection,
    *,
    detectors: Sequence[str] | None = None,
    entity: str | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    config: Config | None = None,
    suspects_only: bool = True,
    progress: Progress | None = None,
) -> list[Finding]:
    """Run the detectors over the store behind ``con``; findings in time order.

    ``since``/``until`` keep the findings whose witnesses overlap that range; the writes
    just outside it still serve as context. ``config`` defaults to ``./audit.toml``.
    The detectors need only the suspect transitions; ``suspects_only=False`` runs them over
    the whole history (same findings). On a store large enough to be sorted in several
    entity buckets (`entity_buckets`), ``progress(done, total)`` is called after each step:
    each bucket's sort, each detector, the witnesses' lookup.
    """
    names = resolve_detectors(detectors)
    config = config if config is not None else load_config(None)
    since_ts = to_timestamp(since, "since")
    until_ts = to_timestamp(until, "until")
    if since_ts and until_ts and since_ts > until_ts:
        raise AuditError("--since is after --until")
    buckets = 1 if entity is not None else entity_buckets(con, since=since_ts, until=until_ts)
    sorted_ = detected = None
    if progress is not None and buckets > 1:  # a small store's check is over at once
        steps = buckets + len(names) + 1
        sorted_, detected = _part(progress, 0, steps), _part(progress, buckets, steps)
    order = commit_order(con, config, entities=None if entity is None else [entity],
                         since=since_ts, until=until_ts, suspects_only=suspects_only,
                         buckets=buckets, progress=sorted_)
    return detect(order, names, progress=detected)


def _part(progress: Progress, before: int, steps: int) -> Progress:
    """``progress`` for one part of a longer task: the part's ``(done, total)`` told as
    ``(before + done, steps)``."""
    return lambda done, _total: progress(before + done, steps)


def entity_buckets(
    con: duckdb.DuckDBPyConnection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """How many entity buckets a check sorts: of the whole store, or of the entities
    written between ``since`` and ``until`` (which may need far fewer). One on a ClickHouse
    store, which spreads its own work (collectors/stores/)."""
    if not isinstance(con, duckdb.DuckDBPyConnection):
        return 1
    if since is None and until is None:
        [(events,)] = con.execute("SELECT count(*) FROM events").fetchall()
    else:
        events = scope_size(con, Scope(since=since, until=until))
    [(limit,)] = con.execute("SELECT current_setting('memory_limit')").fetchall()
    number, _, unit = limit.partition(" ")  # DuckDB writes it as "4.7 GiB"
    try:
        per_bucket = float(number) * _UNITS[unit] / 3 / SORT_BYTES_PER_EVENT
    except (ValueError, KeyError):
        return 1  # a form this does not know: one sort, which spills if it must
    return min(MAX_BUCKETS, max(1, math.ceil(events / max(per_bucket, 1.0))))


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Python's cycle collector paused, then restored: a check builds many small dicts and
    lists (rows, witnesses, findings), none in a cycle, and each collection walked all of
    them again: at 100M events (100k findings) building the findings took 1.95 s with it
    running, 1.27 s paused (README, Speed). Reference counting still frees them."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@_no_cycle_collection()
def detect(
    order: CommitOrder,
    detectors: Sequence[str] | None = None,
    *,
    progress: Progress | None = None,
) -> list[Finding]:
    """Run the detectors on a built commit order; findings in time order, those whose
    witnesses overlap the order's since/until. ``progress(done, total)`` after each
    detector and after the witnesses' lookup."""
    names = resolve_detectors(detectors)
    told = progress or (lambda done, total: None)
    raw: list[tuple[str, dict[str, Any]]] = []
    for done, name in enumerate(names, 1):
        rows = order.rows_per_range if name in _PER_RANGE else order.rows
        raw.extend((name, row) for row in rows(sql(name)))
        told(done, len(names) + 1)
    looked = _witnesses(order.con, {s for _, row in raw for s in row["seqs"]})
    told(len(names) + 1, len(names) + 1)
    since, until = order.scope.since, order.scope.until
    low = timestamps.to_micros(since) if since else float("-inf")
    high = timestamps.to_micros(until) if until else float("inf")
    rank = {name: i for i, name in enumerate(DETECTORS)}
    keyed = []
    for name, row in raw:
        named = [looked[s] for s in row["seqs"]]
        first = min(named, key=lambda w: w.moment)
        last = max(named, key=lambda w: w.moment)
        if last.moment >= low and first.moment <= high:
            found = _finding(name, row, named, first, last)
            keyed.append(((first.moment, found.entity, found.field, rank[name],
                           found.event_ids), found))
    keyed.sort(key=lambda pair: pair[0])
    return [found for _, found in keyed]


def _witnesses(con: duckdb.DuckDBPyConnection, seqs: set[int]) -> dict[int, _Looked]:
    if not seqs:
        return {}
    out = {}
    # Rows as tuples, in _WITNESS_SQL's order: a check may look up 180k witnesses (100M
    # events), and a dict per row cost more than any one step done with it.
    for (seq, event_id, ts, ts_us, entity_type, field, change, old, new, blind, writer, actor,
         write_id, version, base_version, source_ts, priority, trace_id, span_id,
         attrs) in con.execute(_WITNESS_SQL, [sorted(seqs)]).fetchall():
        if ts_us is None:  # ±infinity
            text = rfc3339(ts)
            moment: float = float("-inf") if text == "-infinity" else float("inf")
        else:
            text = _ts_text(ts, ts_us)
            moment = ts_us
        witness: Witness = {
            "event_id": event_id,
            "ts": text,
            "writer": writer,
            "actor": actor,
            "field": field,
            "change": change,
            "old": parse_value(old),
            "new": parse_value(new),
            "blind": blind,
            "version": version,
            "base_version": base_version,
            "source_ts": rfc3339(source_ts),
            "priority": priority,
            "trace_id": trace_id,
            "span_id": span_id,
            "write_id": write_id,
            # anything else the event carried, e.g. the snapshot file an imported event
            # came from (collectors/snapshots.py): None when it carried nothing
            "attrs": parse_value(attrs),
        }
        out[seq] = _Looked(witness, moment, entity_type)
    return out


def _ts_text(ts: datetime | str, ts_us: int) -> str | None:
    """A witness's time as `rfc3339` writes it: from its microseconds where Python can hold
    the moment (no datetime to make), else from what DuckDB handed back."""
    try:
        return timestamps.from_micros(ts_us)
    except OverflowError:
        return rfc3339(ts)


def _fact(value: Any) -> Any:
    """A detector's column as JSON carries it: times in RFC 3339, decimals as numbers."""
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def _finding(
    name: str, row: dict[str, Any], named: list[_Looked], first: _Looked, last: _Looked
) -> Finding:
    witnesses = [w.witness.copy() for w in named]  # a witness may serve several findings
    facts = {k: _fact(v) for k, v in row.items() if k not in _NOT_FACTS}
    return Finding(
        detector=name,
        entity=row["entity"],
        field=row["field"],
        writers=list(dict.fromkeys(w["writer"] for w in witnesses)),
        event_ids=[w["event_id"] for w in witnesses],
        first_ts=first.witness["ts"],
        last_ts=last.witness["ts"],
        severity=row.get("severity") or SEVERITY[name],
        message=render(name, row["entity"], row["field"], witnesses, facts),
        entity_type=next((w.entity_type for w in named if w.entity_type), None),
        witnesses=witnesses,
        facts=facts,
    )
