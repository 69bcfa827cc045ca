"""Commit order for one scope: the `transitions` table every detector and view reads.

queries/transitions.sql builds it as temporary tables of a connection, so that the same
file runs in the DuckDB shell. A connection holds one such table at a time; a build here
therefore returns a handle, `CommitOrder`, and whatever reads the table goes through it. If
another build replaced the table in the meantime, the handle builds its own again before
reading. What a view reads never depends on what ran on the connection before it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import duckdb

from audit.config import Config

_builds = itertools.count(1)

Progress = Callable[[int, int], None]  # (done, total), as the API's long work reports it


@cache
def sql(name: str) -> str:
    """The text of queries/<name>.sql."""
    return resources.files("queries").joinpath(f"{name}.sql").read_text(encoding="utf-8")


def dict_rows(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The rows of an executed query, each a dict by column name."""
    columns = [d[0] for d in cur.description]
    return [dict(zip(columns, values, strict=True)) for values in cur.fetchall()]


@dataclass(frozen=True)
class Scope:
    """What a commit order covers. ``entities`` (None: all) and ``since``/``until`` cut the
    events before the sort (an entity written in the range keeps its whole history, the
    context prev() needs). ``suspects_only`` keeps only the transitions a detector can name
    (what `check` needs); otherwise the table holds the whole history in scope (what
    timeline and replay need). ``buckets``: sort the entities in that many entity ranges,
    one after another, to bound the sort's memory (queries/transitions.sql; DuckDB only)."""

    entities: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    suspects_only: bool = False
    buckets: int = 1


class CommitOrder:
    """The `transitions` table of one connection, built for one scope and configuration."""

    def __init__(self, con: duckdb.DuckDBPyConnection, config: Config, scope: Scope) -> None:
        self.con = con
        self.config = config
        self.scope = scope
        self._build = 0
        # the entity ranges, [low, high) with None for no bound, it was sorted in
        self.ranges: list[tuple[str | None, str | None]] = [(None, None)]

    def execute(self, query: str, params: Any = None) -> duckdb.DuckDBPyConnection:
        """Run ``query`` against this scope's `transitions` (rebuilt first if replaced)."""
        if not self._current():
            self.build()
        return self.con.execute(query, params)

    def rows(self, query: str, params: Any = None) -> list[dict[str, Any]]:
        """``execute``, each row a dict by column name."""
        return dict_rows(self.execute(query, params))

    def rows_per_range(self, query: str, params: Any = None) -> list[dict[str, Any]]:
        """``rows`` of a query that reads `range_events`, once for each entity range this
        order was sorted in, concatenated. The ranges hold every entity once, so for a query
        that reads each entity on its own (as every detector does) they are the rows of
        the whole scope, in another order, with what one range holds in memory."""
        if not self._current():
            self.build()
        if len(self.ranges) == 1:
            return self.rows(query, params)
        out: list[dict[str, Any]] = []
        try:
            for low, high in self.ranges:
                _set_range(self.con, low, high)
                out.extend(dict_rows(self.con.execute(query, params)))
        finally:
            _set_range(self.con, None, None)
        return out

    def _current(self) -> bool:
        found = self.con.execute("SELECT getvariable('audit_commit_order')").fetchall()
        return found[0][0] == self._build

    def build(self, progress: Progress | None = None) -> None:
        """(Re)build the table for this scope now; ``progress(done, total)`` after each
        entity range's sort, when there are several (the last one once the suspects are
        looked up: the table is ready)."""
        self._build = next(_builds)
        _set_variables(self)
        if self.scope.buckets == 1:
            self.ranges = [(None, None)]
            self.con.execute(sql("transitions"))
        else:
            # The file sorts the first range; the other ranges' suspects join it before its
            # last statement looks them all up.
            *first, last = self.con.extract_statements(sql("transitions"))
            ranges = self.ranges = _entity_ranges(self.con, self.scope.buckets)
            sorted_ = progress or (lambda done, total: None)
            _set_range(self.con, *ranges[0])
            for statement in first:
                self.con.execute(statement.query)
            for done, (low, high) in enumerate(ranges[1:], 1):
                sorted_(done, len(ranges))  # told while the range just sorted is still set
                _set_range(self.con, low, high)
                self.con.execute("INSERT INTO suspect_rows SELECT * FROM bucket_suspects")
            self.con.execute(last.query)
            sorted_(len(ranges), len(ranges))
            # what a reader of `range_events` sees from now on: the whole scope
            _set_range(self.con, None, None)
        self.con.execute("SET VARIABLE audit_commit_order = ?::BIGINT", [self._build])


def commit_order(
    con: duckdb.DuckDBPyConnection,
    config: Config | None = None,
    *,
    entities: Iterable[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    suspects_only: bool = False,
    buckets: int = 1,
    progress: Progress | None = None,
) -> CommitOrder:
    """Build the commit order of the events in scope (docs/contract.md §2) and return the
    handle that the detectors and views read it through; ``progress`` as for `build`."""
    scope = Scope(None if entities is None else tuple(entities), since, until, suspects_only,
                  buckets)
    order = CommitOrder(con, config or Config(), scope)
    order.build(progress)
    return order


def scope_size(con: duckdb.DuckDBPyConnection, scope: Scope) -> int:
    """How many events ``scope`` holds: what its sort has to order. Counted through the
    file's own `scoped_events` view, so that the rule of what a scope keeps is said once."""
    _set_variables(CommitOrder(con, Config(), scope))
    # The variables now describe this scope, not the table a handle built: make every
    # handle on the connection build its own again before it reads (`CommitOrder._current`).
    con.execute("SET VARIABLE audit_commit_order = NULL")
    _scoped_events(con)
    [(events,)] = con.execute("SELECT count(*) FROM scoped_events").fetchall()
    return events


def _scoped_events(con: duckdb.DuckDBPyConnection) -> None:
    """Make the file's `scoped_events` view alone, for the scope the variables describe."""
    [view] = [s.query for s in con.extract_statements(sql("transitions"))
              if "VIEW scoped_events" in s.query]
    con.execute(view)


# Events sampled per range to place the cuts between ranges. The cuts only balance the
# ranges: whatever they are, each entity falls in exactly one range.
_SAMPLED_PER_RANGE = 2_000


def _entity_ranges(
    con: duckdb.DuckDBPyConnection, count: int
) -> list[tuple[str | None, str | None]]:
    """``count`` ranges of entity names, [low, high) with None for no bound, that hold every
    entity of the scope exactly once: cut at quantiles of a sample of the scope's events,
    so that each range holds about as many events (one entity is never split; a cut that
    repeats makes an empty range)."""
    _scoped_events(con)
    sampled = max(10_000, _SAMPLED_PER_RANGE * count)
    [(cuts,)] = con.execute(
        "SELECT quantile_disc(entity, ?::DOUBLE[]) FROM "
        f"(SELECT entity FROM scoped_events USING SAMPLE reservoir({sampled} ROWS))",
        [[i / count for i in range(1, count)]],
    ).fetchall()
    if cuts is None:  # nothing in scope: one range of everything, the rest empty
        return [(None, None)] + [("", "")] * (count - 1)
    bounds = [None, *cuts, None]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _set_range(con: duckdb.DuckDBPyConnection, low: str | None, high: str | None) -> None:
    """Which entities `range_events` holds, [low, high): what the next sort reads, and
    `version_conflict`."""
    con.execute("SET VARIABLE audit_bucket_from = ?::VARCHAR", [low])
    con.execute("SET VARIABLE audit_bucket_to = ?::VARCHAR", [high])


def _set_variables(order: CommitOrder) -> None:
    """Hand the settings and scope to the SQL files as DuckDB variables."""
    con, config, scope = order.con, order.config, order.scope
    writers = sorted(config.writer_priorities.items())
    entities = None if scope.entities is None else list(scope.entities)
    con.execute("SET VARIABLE audit_suspects_only = ?::BOOLEAN", [scope.suspects_only])
    con.execute("SET VARIABLE audit_entities = ?::VARCHAR[]", [entities])
    con.execute("SET VARIABLE audit_since = ?::TIMESTAMPTZ", [scope.since])
    con.execute("SET VARIABLE audit_until = ?::TIMESTAMPTZ", [scope.until])
    # unset: the whole scope in one sort (and ClickHouse folds the range test away)
    _set_range(con, None, None)
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
