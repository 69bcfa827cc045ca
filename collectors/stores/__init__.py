"""Stores other than a DuckDB file: ClickHouse, embedded (chdb) or a server or cluster.

`collectors.store.open_store` opens whatever `--db` names (docs/contract.md §8); a ClickHouse
store comes from here. It answers the DuckDB SQL the project writes (collectors/stores/
dialect.py) and is filled by the same ingest rules (collectors/stores/clickhouse_ingest.py). This
package is imported by every store user, so it loads nothing heavy until a ClickHouse
store is opened; chdb, clickhouse-connect and sqlglot are the `clickhouse` extra.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from audit.errors import AuditError
from collectors.stores.location import ChdbLocation, ServerLocation

if TYPE_CHECKING:
    from collectors.ingest import IngestSummary

INSTALL_HINT = "install the clickhouse extra: pip install 'conflict-audit[clickhouse]'"


def open_clickhouse(location: ChdbLocation | ServerLocation, **options: Any) -> Any:
    """The ClickHouse store at ``location`` (collectors.stores.clickhouse.open_clickhouse)."""
    try:
        from collectors.stores.clickhouse import open_clickhouse as opener
    except ImportError as exc:
        raise AuditError(f"{location} needs {exc.name}; {INSTALL_HINT}") from None
    return opener(location, **options)


def is_clickhouse(con: Any) -> bool:
    """Whether ``con`` is a ClickHouse store rather than a DuckDB connection."""
    return type(con).__name__ == "ClickHouseStore"


def ingest(con: Any, paths: list[str], *, progress: bool = False,
           notify: Callable[[str], None] | None = None, **options: Any) -> IngestSummary:
    """`audit ingest` into whichever store ``con`` is, with the same acceptance rules."""
    if is_clickhouse(con):
        from collectors.stores.clickhouse_ingest import ingest as into_clickhouse

        return into_clickhouse(con, paths, progress=progress, notify=notify, **options)
    from collectors.ingest import ingest as into_duckdb

    return into_duckdb(con, paths, progress=progress, notify=notify, **options)
