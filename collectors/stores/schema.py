"""The ClickHouse store's schema: the DuckDB store's tables (collectors/store.py) in ClickHouse.

The same tables and columns, so that the project's statements read both. Differences:

* `events` is a MergeTree ordered by entity, field and the commit-order keys (version, ts,
  seq): one entity's history is stored together, which is what each detector reads
  (docs/contract.md §2). Times are DateTime64(6, 'UTC'), to the microsecond like DuckDB's.
* Keyed tables (DuckDB's PRIMARY KEY, written with INSERT OR IGNORE / OR REPLACE) are
  ReplacingMergeTrees on that key; `ingested_files` is rewritten by delete-then-insert,
  as its rows are read back exactly.
* On a cluster (`CLUSTER` given), every table is created ON CLUSTER; events live in
  `events_local` on each shard and `events` is a Distributed table over them, sharded by a
  hash of the entity, so that each entity's whole history sits on one shard. The
  bookkeeping tables (meta, ingested_files, rejected_events, sent_alerts) are plain tables
  of the node the store's URL names.

`VERSION` is the store's schema version; a store with another one is refused by name.
"""

from __future__ import annotations

VERSION = 1

EVENT_COLUMNS = """
    seq          Int64,
    event_id     String,
    ts           DateTime64(6, 'UTC'),
    entity       String,
    entity_type  Nullable(String),
    field        String,
    change       LowCardinality(String),
    old          Nullable(String),
    new          Nullable(String),
    writer       LowCardinality(String),
    actor        Nullable(String),
    write_id     Nullable(String),
    base_version Nullable(Int64),
    version      Nullable(Int64),
    source_ts    Nullable(DateTime64(6, 'UTC')),
    priority     Nullable(Int32),
    trace_id     Nullable(String),
    span_id      Nullable(String),
    attrs        Nullable(String),
    source       Nullable(String),
    line         Nullable(Int64)"""

# The events table after its name: its columns, and `event_id`, which is not in the sort
# key, with a bloom filter that lets ingest's duplicate test skip most of the table.
_EVENTS_TABLE = f"""({EVENT_COLUMNS},
    INDEX event_id_bloom event_id TYPE bloom_filter GRANULARITY 4
)
    ENGINE = MergeTree
    ORDER BY (entity, field, version, ts, seq)
    SETTINGS allow_nullable_key = 1"""

# A compare-and-swap guard records the writes it refused with attrs.rejected = true
# (collectors/store.py, migration 3); they never changed the data, and the detectors read
# only the applied ones. `true` as JSON or as the text "true", as DuckDB's ->> reads it.
APPLIED = """
    SELECT * FROM {events}
    WHERE attrs IS NULL OR JSONExtractRaw(attrs, 'rejected') NOT IN ('true', '"true"')"""

BOOKKEEPING = [
    """CREATE TABLE IF NOT EXISTS meta {on_cluster} (key String, value String)
    ENGINE = ReplacingMergeTree ORDER BY key""",
    """CREATE TABLE IF NOT EXISTS rejected_events {on_cluster} (
        source      Nullable(String),
        line        Nullable(Int64),
        raw         Nullable(String),
        reason      String,
        at_byte     Nullable(Int64),
        rejected_at DateTime64(6, 'UTC') DEFAULT now64(6)
    ) ENGINE = MergeTree ORDER BY tuple()""",
    """CREATE TABLE IF NOT EXISTS ingested_files {on_cluster} (
        path        String,
        size        Nullable(Int64),
        lines       Nullable(Int64),
        head_md5    Nullable(String),
        tail_md5    Nullable(String),
        ingested_at Nullable(DateTime64(6, 'UTC'))
    ) ENGINE = MergeTree ORDER BY path""",
    """CREATE TABLE IF NOT EXISTS sent_alerts {on_cluster} (
        fingerprint     String,
        detector        Nullable(String),
        entity          Nullable(String),
        field           Nullable(String),
        sentry_event_id Nullable(String),
        sent_at         DateTime64(6, 'UTC') DEFAULT now64(6)
    ) ENGINE = ReplacingMergeTree ORDER BY fingerprint""",
]


def single_node(events_view: str | None = None) -> list[str]:
    """The statements that create the store on one node (chdb, or one server).
    ``events_view``: a statement making `events` a view (collectors/stores/otel.py)
    instead of a table."""
    events = events_view or f"CREATE TABLE IF NOT EXISTS events {_EVENTS_TABLE}"
    return [
        *(ddl.format(on_cluster="") for ddl in BOOKKEEPING),
        events,
        f"CREATE VIEW IF NOT EXISTS applied_events AS{APPLIED.format(events='events')}",
    ]


def cluster(name: str, database: str) -> list[str]:
    """The statements that create the store on cluster ``name`` (database ``database``
    exists on every node): a MergeTree `events_local` on each shard, with its own
    `applied_events_local` view (what a query per shard reads), and the Distributed
    `events` over them, sharded by cityHash64(entity)."""
    on = f"ON CLUSTER {_quoted(name)}"
    return [
        *(ddl.format(on_cluster="") for ddl in BOOKKEEPING),
        f"CREATE TABLE IF NOT EXISTS events_local {on} {_EVENTS_TABLE}",
        f"CREATE VIEW IF NOT EXISTS applied_events_local {on} AS"
        f"{APPLIED.format(events='events_local')}",
        f"CREATE TABLE IF NOT EXISTS events {on} AS events_local\n"
        f"    ENGINE = Distributed({_quoted(name)}, {_quoted(database)}, events_local, "
        "cityHash64(entity))",
        f"CREATE VIEW IF NOT EXISTS applied_events {on} AS{APPLIED.format(events='events')}",
    ]


def _quoted(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"
