"""A ClickHouse store (chdb or a server) behind the calls the project makes on a DuckDB one.

The readers (queries/, collectors/stats.py, collectors/sent_alerts.py, the report) call
``execute(sql, params)`` with DuckDB SQL and read ``description`` and ``fetchall()``, as on a
DuckDB connection. Here each statement goes through collectors/stores/dialect.py and runs
on ClickHouse; what DuckDB keeps in its connection (variables, temporary views) is kept in a
client-side `Session`. Nothing else of DuckDB's API is offered: a command that needs more
(`audit pg pull`, `import snapshots`, `alert --watch`) says it works on DuckDB stores only.

On a cluster (and in the tests, on entity-hash buckets of one store) a query that reads the
commit order runs once per part, on that part's own tables, and the rows are concatenated:
every such query reads one entity's events at a time, so each part's answer is exact for
its entities (README, "When one machine is not enough"). Window functions then run where the
data is, never on the node that received the query.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlglot import exp

from audit.errors import AuditError, first_line
from collectors.stores import INSTALL_HINT, dialect, schema
from collectors.stores.location import ChdbLocation, ServerLocation


class StoreError(AuditError):
    """ClickHouse refused a statement; its first line is the message."""


class _Result:
    """What ``execute`` returns: the part of a DuckDB result the project reads."""

    def __init__(self, table: pa.Table | None) -> None:
        self._rows: list[tuple] = []
        self.description: list[tuple] | None = None
        if table is not None:
            self.description = [(name, None, None, None, None, None, None)
                                 for name in table.column_names]
            columns = [_plain_members(column.to_pylist()) if _has_struct(column.type)
                       else column.to_pylist() for column in table.columns]
            self._rows = list(zip(*columns, strict=True)) if columns else []

    def fetchall(self) -> list[tuple]:
        rows, self._rows = self._rows, []
        return rows

    def fetchone(self) -> tuple | None:
        return self._rows.pop(0) if self._rows else None


def _plain_members(value: Any) -> Any:
    """Struct members as DuckDB names them: without the prefix named_tuples gives them."""
    if isinstance(value, dict):
        return {k.removeprefix(dialect.MEMBER): _plain_members(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_members(v) for v in value]
    return value


def _has_struct(kind: pa.DataType) -> bool:
    if pa.types.is_struct(kind):
        return True
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _has_struct(kind.value_type)
    return False


# ---------------------------------------------------------------------------------------
# Backends: how SQL reaches ClickHouse.


class _Chdb:
    """Embedded ClickHouse. One process holds a directory at a time (like DuckDB), and a
    process holds one directory at a time (chdb's own rule)."""

    def __init__(self, path: Path) -> None:
        try:
            import chdb
        except ImportError:
            raise AuditError(f"chdb is not installed; {INSTALL_HINT}") from None
        try:
            self._con = chdb.connect(str(path))
        except Exception as exc:  # chdb raises RuntimeError with ClickHouse's message
            raise StoreError(f"cannot open chdb:{path}: {_clean(exc)}") from None
        for name, value in dialect.SETTINGS.items():
            self._con.query(f"SET {name} = {value}")

    def query_arrow(self, sql: str) -> pa.Table:
        return self._con.query(sql, "ArrowTable")

    def command(self, sql: str) -> None:
        self._con.query(sql)

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        columns = ", ".join(f"`{name}`" for name in data.column_names)
        # chdb's Python() table function reads a variable of the caller's frame by name.
        audit_rows = data  # noqa: F841 - read by name below
        self._con.query(f"INSERT INTO {table} ({columns}) SELECT {columns} "
                        "FROM Python(audit_rows)")

    def close(self) -> None:
        self._con.close()


class _Server:
    """A ClickHouse server over HTTP(S) (clickhouse-connect). Its client keeps one session,
    which holds the temporary tables."""

    def __init__(self, location: ServerLocation, host: str | None = None) -> None:
        try:
            import clickhouse_connect
        except ImportError:
            raise AuditError(f"clickhouse-connect is not installed; {INSTALL_HINT}") from None
        try:
            self._client = clickhouse_connect.get_client(
                host=host or location.host, port=location.port, username=location.user,
                password=location.password, database=location.database,
                secure=location.secure, settings=dict(dialect.SETTINGS),
                connect_timeout=10,
            )
        except Exception as exc:
            raise StoreError(f"cannot reach ClickHouse at {location}: {_clean(exc)}") from None

    def query_arrow(self, sql: str) -> pa.Table:
        return self._client.query_arrow(sql, use_strings=True)

    def command(self, sql: str) -> None:
        self._client.command(sql)

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        self._client.insert_arrow(table, data)

    def close(self) -> None:
        self._client.close()


def _clean(exc: BaseException) -> str:
    """ClickHouse's message without its stack, version and code noise."""
    text = first_line(exc)
    for cut in (" (version ", ". Stack trace"):
        text = text.split(cut)[0]
    return text.removeprefix("Failed to create connection: ")


@dataclass(frozen=True)
class Part:
    """Where a query on the commit order runs, for one part of the entities: a backend,
    and what each of the store's tables is called there (a table name, or a subquery,
    in ClickHouse's SQL)."""

    backend: Any
    tables: dict[str, str]


class ClickHouseStore:
    """A ClickHouse store: ``execute`` takes DuckDB SQL, as a DuckDB connection does."""

    def __init__(self, backend: Any, location: ChdbLocation | ServerLocation, *,
                 parts: Sequence[Part] = (), read_only: bool = False,
                 owns_backend: bool = True) -> None:
        self._backend = backend
        self._owns_backend = owns_backend
        self.location = location
        self.read_only = read_only
        self.parts = list(parts)
        # With parts, temporary tables are read as CTEs: each part computes its own.
        self.session = dialect.Session(materialise=not self.parts)
        self._closed = False

    # -- what a DuckDB connection offers, for the project's readers ---------------------

    def execute(self, sql: str, params: Any = None) -> _Result:
        """Run DuckDB SQL (one statement or a script); the last query's rows."""
        result = _Result(None)
        for statement in dialect.parse(sql):
            tree = dialect.bind(statement.tree, params)
            kept = dialect.keep_in_session(statement, tree, self.session)
            if kept is not None:
                for command in kept:
                    self._run(self._backend.command, command)
            elif self.parts and self._reads_session(tree):
                result = _Result(self._fan_out(tree))
            else:
                result = self._one(tree)
        return result

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._owns_backend:
            return
        for backend in {id(b): b for b in [self._backend, *(p.backend for p in self.parts)]
                        }.values():
            backend.close()

    def __getattr__(self, name: str) -> Any:
        # Anything else of DuckDB's connection API: a clear refusal, not an AttributeError.
        if name.startswith("__"):
            raise AttributeError(name)
        raise AuditError(f"this command works on DuckDB stores only, not on {self.location}")

    # -- ClickHouse's own side, for ingest and the tests --------------------------------

    def query_arrow(self, sql: str) -> pa.Table:
        """Run ClickHouse SQL; its rows as Arrow."""
        return self._run(self._backend.query_arrow, sql)

    def command(self, sql: str) -> None:
        """Run a ClickHouse statement that returns nothing."""
        self._run(self._backend.command, sql)

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        """Append Arrow rows to ``table`` (columns by name)."""
        if data.num_rows:
            self._run(self._backend.insert_arrow, table, data)

    def partitioned(self, buckets: int) -> ClickHouseStore:
        """This store, its commit-order queries run once per entity-hash bucket
        (cityHash64(entity) % buckets) and the rows concatenated, as a cluster runs them
        once per shard. What the tests hold the rule "a detector reads one entity's events
        only" with. It shares this store's connection; close this one, not it."""
        parts = []
        for i in range(buckets):
            where = f"cityHash64(entity) % {buckets} = {i}"
            parts.append(Part(self._backend, {
                "events": f"(SELECT * FROM events WHERE {where})",
                "applied_events": f"(SELECT * FROM applied_events WHERE {where})",
            }))
        return ClickHouseStore(self._backend, self.location, parts=parts, read_only=True,
                               owns_backend=False)

    def translate(self, sql: str, params: Any = None) -> list[str]:
        """The ClickHouse statements ``execute`` would run for ``sql`` (for people and tests)."""
        return dialect.translate(sql, params, self.session)

    # -- internals ----------------------------------------------------------------------

    def _run(self, call: Callable[..., Any], *args: Any) -> Any:
        if self._closed:
            raise AuditError(f"{self.location} is closed")
        try:
            return call(*args)
        except AuditError:
            raise
        except Exception as exc:
            raise StoreError(f"ClickHouse: {_clean(exc)}") from None

    def _one(self, tree: exp.Expression) -> _Result:
        sql = dialect.to_clickhouse(tree, self.session)
        if isinstance(tree, exp.Query):
            return _Result(self._run(self._backend.query_arrow, sql))
        self._run(self._backend.command, sql)
        return _Result(None)

    def _reads_session(self, tree: exp.Expression) -> bool:
        return isinstance(tree, exp.Query) and any(
            t.name.lower() in self.session.views and not t.db for t in tree.find_all(exp.Table))

    def _fan_out(self, tree: exp.Expression) -> pa.Table:
        # Translated once, with a marker for each table a part keeps elsewhere; each part's
        # query is that text with its own tables put in.
        names = sorted({name for part in self.parts for name in part.tables})
        marks = {name: f"__audit_part_{name}" for name in names}
        sql = dialect.to_clickhouse(tree, self.session, tables=marks)

        def run(part: Part) -> pa.Table:
            text = sql
            for name, mark in marks.items():
                text = text.replace(mark, part.tables.get(name, name))
            return self._run(part.backend.query_arrow, text)

        if len({id(part.backend) for part in self.parts}) == 1:
            tables = [run(part) for part in self.parts]  # one engine: one query at a time
        else:  # one thread per shard: each shard's server does the work
            with ThreadPoolExecutor(min(len(self.parts), 8)) as pool:
                tables = list(pool.map(run, self.parts))
        return pa.concat_tables(tables, promote_options="permissive")


# ---------------------------------------------------------------------------------------
# Opening.


def open_clickhouse(location: ChdbLocation | ServerLocation, *, read_only: bool = False,
                    create: bool = True, wait_s: float = 60.0,
                    notify: Callable[[str], None] | None = None) -> ClickHouseStore:
    """Open the store at ``location``, creating its schema when writable and ``create``."""
    notify = notify or (lambda msg: print(msg, file=sys.stderr))
    if isinstance(location, ChdbLocation):
        path = location.path
        if (read_only or not create) and not path.exists():
            raise AuditError(f"no store at {location}; run `audit ingest` first (or pass --db)")
        if not path.parent.exists():
            raise AuditError(f"directory {path.parent} does not exist")
        _wait_for_chdb(path, wait_s, notify)
        backend: Any = _Chdb(path)
        parts: list[Part] = []
    else:
        backend = _Server(location)
        parts = _shards(backend, location) if location.cluster else []
    store = ClickHouseStore(backend, location, parts=parts, read_only=read_only)
    try:
        _prepare(store, location, writable=create and not read_only)
    except BaseException:
        store.close()
        raise
    return store


def _prepare(store: ClickHouseStore, location: ChdbLocation | ServerLocation,
             writable: bool) -> None:
    """Create the schema (when ``writable``), or check that it is ours and current."""
    tables = {row["name"] for row in store.query_arrow(
        "SELECT name FROM system.tables WHERE database = currentDatabase()").to_pylist()}
    if "meta" in tables:
        found = store.query_arrow(
            "SELECT any(value) AS v FROM meta FINAL WHERE key = 'schema_version'").column(0)
        version = found[0].as_py() if len(found) else None
        if version != str(schema.VERSION):
            raise AuditError(f"{location} has ClickHouse store schema version {version}; "
                             f"this conflict-audit understands {schema.VERSION}")
        return
    if "events" in tables:
        raise AuditError(f"{location} has an events table but is not a conflict-audit store")
    if not writable:
        raise AuditError(f"no store at {location}; run `audit ingest` first (or pass --db)")
    if isinstance(location, ServerLocation) and location.cluster:
        if location.otel_logs:
            raise AuditError("--db: otel_logs= and cluster= together are not supported")
        statements = schema.cluster(location.cluster, location.database)
    elif location.otel_logs:
        from collectors.stores.otel import events_view

        try:
            statements = schema.single_node(events_view(store, location.otel_logs))
        except ValueError as exc:
            raise AuditError(f"--db: {exc}") from None
    else:
        statements = schema.single_node()
    for statement in statements:
        store.command(statement)
    store.command(f"INSERT INTO meta VALUES ('schema_version', '{schema.VERSION}')")


def _shards(backend: _Server, location: ServerLocation) -> list[Part]:
    """One part per shard of the cluster, reached over HTTP at its first replica, on the
    port of the URL (every node is assumed to serve HTTP on the same port)."""
    rows = backend.query_arrow(
        "SELECT shard_num, any(host_name) AS host FROM system.clusters "
        f"WHERE cluster = {dialect.quote(location.cluster or '')} AND replica_num = 1 "
        "GROUP BY shard_num ORDER BY shard_num").to_pylist()
    if not rows:
        raise AuditError(f"ClickHouse at {location} knows no cluster {location.cluster!r}")
    local = {"events": "events_local", "applied_events": "applied_events_local"}
    return [Part(_Server(location, host=row["host"]), local) for row in rows]


def _wait_for_chdb(path: Path, wait_s: float, notify: Callable[[str], None]) -> None:
    """chdb keeps a `status` file with the holder's PID while a process has the directory
    open; another process cannot open it then (chdb says only "Error initializing"). Wait,
    bounded, as for a DuckDB file another process holds."""
    deadline, told, delay = time.monotonic() + wait_s, False, 0.05
    while (holder := _chdb_holder(path)) is not None:
        if time.monotonic() >= deadline:
            raise AuditError(f"chdb:{path} is in use by another process (PID {holder}) and "
                             f"stayed in use for {wait_s:g} s; try again when it has finished")
        if not told:
            notify(f"chdb:{path} is in use by another process (PID {holder}); waiting…")
            told = True
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 1.0)


def _chdb_holder(path: Path) -> int | None:
    try:
        text = (path / "status").read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("PID:"):
            try:
                pid = int(line.split(":", 1)[1])
            except ValueError:
                return None
            if pid == os.getpid():
                return None
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None  # left behind by a process that died
            except PermissionError:
                return pid
            return pid
    return None
