"""A database captured by schema version 1 (the diff in the trigger) is upgraded by the next
`audit pg install`: its triggers keep their settings, nothing captured is lost or doubled,
and a capture newer than this code is refused."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from pg_events import pulled

from audit.errors import AuditError
from collectors.pg import install, pull
from collectors.store import open_store

VERSION_1 = (Path(__file__).parent / "capture_v1.sql").read_text(encoding="utf-8")
# The trigger as version 1's `audit pg install --table blocks --version-column version
# --entity-type block --list-key '*.files=name' --exclude '*.isLoading'` created it: the
# patterns as LIKE patterns (`*` -> `%`, `_` escaped), the stamp of the jsonb column added.
VERSION_1_TRIGGER = r"""
CREATE TRIGGER conflict_audit_capture AFTER INSERT OR UPDATE OR DELETE ON blocks
FOR EACH ROW EXECUTE FUNCTION conflict_audit.capture('blocks', 'block', '{"id"}', 'version',
    '{"%.isLoading","content.\\_meta"}', '{"%.files","%"}', '{"name","id"}')
"""
DOC = {"files": [{"name": "f1", "s": 1}], "isLoading": False, "_meta": {"v": 1}}


def write(dsn: str, size: int, loading: bool) -> None:
    doc = {**DOC, "files": [{"name": "f0", "s": 0}, {"name": "f1", "s": size}],
           "isLoading": loading, "_meta": {"v": size}}
    with psycopg.connect(dsn) as conn:
        conn.execute("SET LOCAL audit.writer = 'workflow'")
        conn.execute("UPDATE blocks SET content = %s, version = version + 1",
                     [json.dumps(doc)])


@pytest.fixture
def version_1(pg_dsn) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE blocks (id text PRIMARY KEY, content jsonb, version int)")
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        conn.execute("INSERT INTO blocks VALUES ('b1', %s, 1)",
                     [json.dumps({**DOC, "files": [{"name": "f0", "s": 0}, *DOC["files"]]})])
        conn.execute(VERSION_1)
        conn.execute(VERSION_1_TRIGGER)
    return pg_dsn


def test_version_1_is_upgraded_keeping_settings_and_every_captured_row(version_1, tmp_path):
    store = open_store(tmp_path / "store.duckdb")
    write(version_1, 2, True)
    assert pull(version_1, store).ingested == 1  # a version 1 database is pulled as it is
    write(version_1, 3, False)  # captured by version 1, not pulled yet

    install(version_1, "notes")  # any install upgrades the whole database
    with psycopg.connect(version_1) as conn:
        assert conn.execute("SELECT value FROM conflict_audit.meta "
                            "WHERE key = 'schema_version'").fetchone() == ("2",)
        assert conn.execute("SELECT to_regprocedure('conflict_audit.diff(jsonb, jsonb, "
                            "text[], text[], text[])')").fetchone() == (None,)
        (setup,) = conn.execute(
            "SELECT entity_prefix, entity_type, key_columns, version_column, exclude, list_keys"
            " FROM conflict_audit.installations WHERE table_name = 'public.blocks'").fetchall()
    assert setup == ("blocks", "block", ["id"], "version", ["*.isLoading", "content._meta"],
                     [["*.files", "name"], ["*", "id"]])
    write(version_1, 4, True)  # captured by the upgraded trigger, with the same settings

    second = pull(version_1, store)
    assert (second.ingested, second.rejected) == (2, 0)
    assert (pull(version_1, store).ingested, pull(version_1, store).ingested) == (0, 0)
    events = store.execute(
        "SELECT entity, entity_type, field, old::VARCHAR, new::VARCHAR, writer, base_version,"
        " version FROM events ORDER BY version").fetchall()
    assert events == [
        ("blocks:b1", "block", "content.files[f1].s", "1", "2", "workflow", 1, 2),
        ("blocks:b1", "block", "content.files[f1].s", "2", "3", "workflow", 2, 3),
        ("blocks:b1", "block", "content.files[f1].s", "3", "4", "workflow", 3, 4),
    ]
    assert [e["field"] for e in pulled(version_1)] == ["content.files[f1].s"] * 3
    store.close()


def test_installing_again_after_an_upgrade_replaces_the_upgraded_trigger(version_1):
    install(version_1, "notes")
    install(version_1, "blocks", version_column="version", entity_type="block",
            list_keys={"*.files": "name", "*": "id"})  # *.isLoading no longer excluded
    write(version_1, 2, True)
    with psycopg.connect(version_1) as conn:
        assert conn.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'blocks'::regclass"
                            " AND NOT tgisinternal").fetchone() == (1,)
    assert [e["field"] for e in pulled(version_1)] == [
        "content.files[f1].s", "content.isLoading"]


def test_a_capture_newer_than_this_code_is_refused_in_one_line(pg_dsn, tmp_path):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    install(pg_dsn, "notes")
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE conflict_audit.meta SET value = '3' WHERE key = 'schema_version'")
    store = open_store(tmp_path / "store.duckdb")
    for attempt in (lambda: install(pg_dsn, "notes"), lambda: pull(pg_dsn, store)):
        with pytest.raises(AuditError, match="schema version 3, newer than this conflict-audit"):
            attempt()
    store.close()
