"""What --db names (collectors/stores/location.py) and the DDL of a cluster store."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.errors import AuditError
from collectors.store import open_store, resolve_db
from collectors.stores import schema
from collectors.stores.location import ChdbLocation, ServerLocation, parse_location


def test_plain_paths_stay_duckdb_files():
    assert parse_location("audit.duckdb") == Path("audit.duckdb")
    assert parse_location("/var/x:y.duckdb") == Path("/var/x:y.duckdb")
    assert parse_location(":memory:") == Path(":memory:")
    assert parse_location(Path("a.duckdb")) == Path("a.duckdb")


def test_chdb_and_server_urls():
    assert parse_location("chdb:/data/store") == ChdbLocation(Path("/data/store"))
    assert parse_location("chdb:rel?otel_logs=otel_logs").otel_logs == "otel_logs"
    server = parse_location("clickhouse://au%40dit:p%3Ass@ch-1:8443/audit?cluster=prod&secure=1")
    assert server == ServerLocation(host="ch-1", port=8443, database="audit", user="au@dit",
                                    password="p:ss", cluster="prod", secure=True)
    assert str(server) == "clickhouse://au@dit:***@ch-1:8443/audit"
    assert "p:ss" not in repr(server)
    assert parse_location("clickhouse://h:8123/db").user == "default"


@pytest.mark.parametrize("url", ["clickhouse://h/db", "clickhouse://h:8123/", "clickhouse://h:x/d",
                                 "clickhouse://h:8123/a/b", "clickhouse://h:8123/d?secure=2",
                                 "clickhouse://h:8123/d?cluster=", "sqlite:x.db"])
def test_unreadable_urls_are_errors(url):
    with pytest.raises(AuditError):
        parse_location(url)


def test_the_environment_names_the_store_too(monkeypatch):
    monkeypatch.setenv("AUDIT_DB", "chdb:/x")
    assert resolve_db(None) == ChdbLocation(Path("/x"))


def test_the_cluster_ddl_is_clickhouse_sql(tmp_path):
    """ON CLUSTER cannot run without a cluster; ClickHouse parses each statement here."""
    store = open_store(f"chdb:{tmp_path / 's'}")
    try:
        statements = schema.cluster("prod", "audit")
        for statement in statements:
            store.query_arrow(f"EXPLAIN AST {statement}")
        text = "\n".join(statements)
        assert "Distributed(`prod`, `audit`, events_local, cityHash64(entity))" in text
        assert text.count("ON CLUSTER `prod`") == 4
    finally:
        store.close()


def test_a_store_of_another_schema_version_is_refused(tmp_path):
    store = open_store(f"chdb:{tmp_path / 's'}")
    store.command("INSERT INTO meta VALUES ('schema_version', '99')")
    store.command("OPTIMIZE TABLE meta FINAL")
    store.close()
    with pytest.raises(AuditError, match="schema version 99"):
        open_store(f"chdb:{tmp_path / 's'}")
