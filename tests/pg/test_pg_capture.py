"""The capture on a real table, seen as `audit pg pull` stores it: what a row change records,
who it says wrote, which versions it claims, and installing and removing the trigger."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg
import pytest
from pg_events import pulled

from audit.errors import AuditError
from collectors.pg import install, uninstall

# Shaped like a workspace store's content table: a tree node with a JSON document.
NODES = """
CREATE TABLE content_nodes (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    type            text NOT NULL,
    preview_json    jsonb,
    current_version integer NOT NULL DEFAULT 1,
    updated_at      timestamptz NOT NULL DEFAULT now()
)
"""
DOC = {"nodes": [{"id": "block-A", "data": {"content": "x", "status": "idle"}}],
       "_meta": {"version": 1}}


@pytest.fixture
def nodes(pg_dsn) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(NODES)
        conn.execute("INSERT INTO content_nodes (id, name, type, preview_json) "
                     "VALUES ('n1', 'plan.json', 'json', %s)", [json.dumps(DOC)])
    install(pg_dsn, "content_nodes", version_column="current_version", exclude=["updated_at"],
            entity_type="node")
    return pg_dsn


def test_an_update_records_one_row_per_changed_field_with_paths_into_jsonb(nodes):
    with psycopg.connect(nodes) as conn:
        conn.execute("SET LOCAL audit.writer = 'workflow'")
        conn.execute("SET LOCAL audit.actor = 'engine-1'")
        conn.execute(
            "UPDATE content_nodes SET name = 'plan v2.json', updated_at = now(),"
            " preview_json = jsonb_set(preview_json, '{nodes,0,data,status}', '\"done\"'),"
            " current_version = current_version + 1 WHERE id = 'n1'")
    rows = pulled(nodes)
    assert sorted((r["field"], r["change"], r["old"], r["new"]) for r in rows) == [
        ("name", "changed", "plan.json", "plan v2.json"),
        ("preview_json.nodes[block-A].data.status", "changed", "idle", "done"),
    ]
    assert {(r["op"], r["entity"], r["entity_type"], r["writer"], r["actor"], r["base_version"],
             r["version"]) for r in rows} == {
        ("UPDATE", "content_nodes:n1", "node", "workflow", "engine-1", 1, 2)}
    assert len({r["write_id"] for r in rows}) == 1


def test_inserts_add_and_deletes_remove_every_column_but_key_version_and_excluded(nodes):
    with psycopg.connect(nodes, autocommit=True) as conn:
        conn.execute("INSERT INTO content_nodes (id, name, type) VALUES ('n2', 'f', 'folder')")
        conn.execute("DELETE FROM content_nodes WHERE id = 'n2'")
    rows = pulled(nodes)
    inserted = {r["field"]: r for r in rows if r["op"] == "INSERT"}
    deleted = {r["field"]: r for r in rows if r["op"] == "DELETE"}
    assert set(inserted) == set(deleted) == {"name", "type", "preview_json"}
    assert {(r["change"], r["new"]) for r in inserted.values()} == {
        ("added", "f"), ("added", "folder"), ("added", None)}
    assert {(r["change"], r["old"]) for r in deleted.values()} == {
        ("removed", "f"), ("removed", "folder"), ("removed", None)}
    # A delete is one more write of the row: the version after the last one.
    assert {(r["base_version"], r["version"]) for r in inserted.values()} == {(0, 1)}
    assert {(r["base_version"], r["version"]) for r in deleted.values()} == {(1, 2)}
    assert {r["entity"] for r in rows} == {"content_nodes:n2"}


def test_an_excluded_column_is_never_copied_into_the_capture(nodes):
    with psycopg.connect(nodes, autocommit=True) as conn:
        conn.execute("UPDATE content_nodes SET updated_at = now(), name = 'x'")
        images = conn.execute("SELECT old, new FROM conflict_audit.row_changes").fetchall()
    assert [(sorted(old), sorted(new)) for old, new in images] == [
        (["current_version", "id", "name", "preview_json", "type"],) * 2]


def test_each_row_change_is_diffed_with_the_settings_it_was_captured_under(nodes):
    install(nodes, "content_nodes", version_column="current_version",
            exclude=["updated_at", "name"])
    with psycopg.connect(nodes, autocommit=True) as conn:
        conn.execute("UPDATE content_nodes SET name = 'a', type = 'folder'")
        install(nodes, "content_nodes", version_column="current_version", exclude=["type"])
        conn.execute("UPDATE content_nodes SET name = 'b', type = 'file'")
    assert [(r["field"], r["new"]) for r in pulled(nodes)] == [("type", "folder"), ("name", "b")]


def test_the_stamp_of_a_stamped_document_is_not_captured_nor_carried(nodes):
    with psycopg.connect(nodes, autocommit=True) as conn:
        conn.execute("UPDATE content_nodes SET preview_json = jsonb_set(preview_json,"
                     " '{_meta,version}', '2'), current_version = 2 WHERE id = 'n1'")
        assert pulled(nodes) == []
        conn.execute("DELETE FROM content_nodes")
    (doc,) = [r["old"] for r in pulled(nodes) if r["field"] == "preview_json"]
    assert "_meta" not in doc and doc["nodes"][0]["id"] == "block-A"


def test_a_new_key_ends_one_entity_and_begins_another_in_one_write(nodes):
    with psycopg.connect(nodes, autocommit=True) as conn:
        conn.execute("UPDATE content_nodes SET id = 'n9' WHERE id = 'n1'")
    rows = pulled(nodes)
    assert {(r["entity"], r["change"]) for r in rows} == {
        ("content_nodes:n1", "removed"), ("content_nodes:n9", "added")}
    assert len({r["write_id"] for r in rows}) == 1


def test_an_update_that_changes_no_field_and_moves_the_version_on_records_nothing(nodes):
    with psycopg.connect(nodes, autocommit=True) as conn:
        conn.execute("UPDATE content_nodes SET current_version = 2, updated_at = now() + "
                     "interval '1 day'")
    assert pulled(nodes) == []


def test_a_versioned_row_written_as_it_was_is_a_rewrite_of_every_captured_column(nodes):
    # The second of two racing increments: the row is already what it writes.
    with psycopg.connect(nodes, autocommit=True) as conn:
        conn.execute("UPDATE content_nodes SET name = name, current_version = 1")
        conn.execute("UPDATE content_nodes SET updated_at = now() + interval '1 day'")
        conn.execute("UPDATE content_nodes SET current_version = 0")  # set back: also one
    rows = pulled(nodes)
    assert [r["field"] for r in rows] == ["name", "preview_json", "type"] * 3
    assert all(r["change"] == "changed" and r["old"] == r["new"] and r["attrs"] == {"rewrite": True}
               for r in rows)
    assert [(r["base_version"], r["version"]) for r in rows[::3]] == [(0, 1), (0, 1), (-1, 0)]
    assert "_meta" not in rows[1]["new"]


def test_without_a_version_column_an_update_that_changes_nothing_records_nothing(nodes):
    install(nodes, "content_nodes", exclude=["updated_at"])
    with psycopg.connect(nodes, autocommit=True) as conn:
        conn.execute("UPDATE content_nodes SET name = name")
        conn.execute("UPDATE content_nodes SET updated_at = now() + interval '1 day'")
    assert pulled(nodes) == []


@pytest.fixture
def update_with(nodes):
    def update(*settings: str, writer_dsn: str | None = None, **connect) -> dict:
        """One update of n1's name with the given SET LOCAL statements; its `name` event."""
        with psycopg.connect(writer_dsn or nodes, **connect) as conn:
            for statement in settings:
                conn.execute(statement)
            conn.execute("UPDATE content_nodes SET name = name || '+', "
                         "current_version = current_version + 1 WHERE id = 'n1'")
        return [r for r in pulled(nodes) if r["field"] == "name"][-1]

    return update


def test_the_writer_comes_from_the_transaction_else_application_name_else_the_role(
        nodes, update_with):
    with psycopg.connect(nodes, autocommit=True) as conn:
        conn.execute("CREATE ROLE web_user")
        conn.execute("GRANT SELECT, UPDATE ON content_nodes TO web_user")
    assert update_with("SET LOCAL audit.writer = 'polling_sync'",
                       application_name="api")["writer"] == "polling_sync"
    assert update_with(application_name="api")["writer"] == "api"
    assert update_with()["writer"] == "postgres"
    # SET ROLE's role, not the trigger function's owner it runs as.
    assert update_with("SET LOCAL ROLE web_user")["writer"] == "web_user"
    # SET LOCAL ends with its transaction: the next one falls back again.
    assert update_with(application_name="api")["writer"] == "api"


def test_base_version_and_source_ts_come_from_the_transaction(nodes, update_with):
    row = update_with("SET LOCAL audit.base_version = '7'",
                      "SET LOCAL audit.source_ts = '2026-03-01T12:00:00.5+02:00'")
    assert (row["base_version"], row["version"]) == (7, 2)
    assert row["source_ts"] == datetime(2026, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)
    assert row["attrs"] is None


def test_unusable_settings_never_fail_the_write_and_are_kept_aside(nodes, update_with):
    row = update_with("SET LOCAL audit.base_version = 'seven'",
                      "SET LOCAL audit.source_ts = 'yesterday'")
    assert (row["base_version"], row["version"], row["source_ts"]) == (1, 2, None)
    assert row["attrs"] == {"invalid_settings": {"audit.base_version": "seven",
                                                 "audit.source_ts": "yesterday"}}


def test_without_a_version_column_no_versions_are_claimed(nodes, update_with):
    install(nodes, "content_nodes", exclude=["updated_at"])
    row = update_with("SET LOCAL audit.base_version = '7'")
    assert (row["base_version"], row["version"]) == (None, None)
    assert row["entity_type"] == "content_nodes"


def test_writers_need_no_access_to_the_capture_and_cannot_forge_it(nodes, update_with):
    with psycopg.connect(nodes, autocommit=True) as conn:
        conn.execute("CREATE ROLE app LOGIN")
        conn.execute("GRANT SELECT, UPDATE ON content_nodes TO app")
    app_dsn = nodes.replace("user=postgres", "user=app")
    assert update_with(writer_dsn=app_dsn)["writer"] == "app"
    for statement in (
        "INSERT INTO conflict_audit.row_changes (installation, op, new, writer) "
        "VALUES (1, 'INSERT', '{}', 'someone else')",
        "SELECT count(*) FROM conflict_audit.row_changes",
        "SELECT count(*) FROM conflict_audit.installations",
    ):
        with psycopg.connect(app_dsn) as conn, \
                pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_captured_rows_are_append_only(nodes):
    with psycopg.connect(nodes, autocommit=True) as conn:
        conn.execute("UPDATE content_nodes SET name = 'other'")
        for statement in ("UPDATE conflict_audit.row_changes SET writer = 'someone else'",
                          "UPDATE conflict_audit.installations SET exclude = '{}'"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(statement)


def test_installing_twice_is_one_trigger_and_uninstalling_keeps_what_was_captured(nodes):
    install(nodes, "content_nodes", version_column="current_version", exclude=["updated_at"])
    with psycopg.connect(nodes, autocommit=True) as conn:
        (triggers,) = conn.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = "
                                   "'content_nodes'::regclass AND NOT tgisinternal").fetchone()
        assert triggers == 1
        conn.execute("UPDATE content_nodes SET name = 'once'")
        assert len(pulled(nodes)) == 1
        assert uninstall(nodes, "content_nodes") is True
        assert uninstall(nodes, "content_nodes") is False
        conn.execute("UPDATE content_nodes SET name = 'not captured'")
    assert [r["new"] for r in pulled(nodes)] == ["once"]


@pytest.mark.parametrize(("options", "message"), [
    ({"table": "missing"}, "no table 'missing'"),
    ({"table": "content_nodes", "version_column": "name"}, "versions are integers"),
    ({"table": "content_nodes", "version_column": "nope"}, "no column 'nope'"),
    ({"table": "content_nodes", "key": ["nope"]}, "no column 'nope'"),
    ({"table": "conflict_audit.row_changes"}, "not captured"),
])
def test_install_refuses_what_it_cannot_capture_in_one_line(nodes, options, message):
    with pytest.raises(AuditError, match=message):
        install(nodes, **options)


def test_odd_rows_are_captured_without_failing_the_write(pg_dsn):
    """A NULL in a nullable --key column, a version column that no longer holds integers."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, slug text, body text, rev int)")
        install(pg_dsn, "notes", key=["slug"], version_column="rev")
        conn.execute("INSERT INTO notes (slug, body, rev) VALUES (NULL, 'x', 1)")
        conn.execute("ALTER TABLE notes ALTER COLUMN rev TYPE text")
        conn.execute("UPDATE notes SET body = 'y', rev = 'two'")
    rows = pulled(pg_dsn)
    assert {r["entity"] for r in rows} == {"notes:"}
    assert [(r["field"], r["version"]) for r in rows if r["op"] == "UPDATE"] == [("body", None)]


def test_numbers_beyond_64_bits_are_pulled_exactly(pg_dsn):
    """jsonb and numeric have no size limit; orjson writes no integer beyond 64 bits."""
    big = 10**21 + 1
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE ledgers (id text PRIMARY KEY, total numeric, doc jsonb)")
        install(pg_dsn, "ledgers")
        conn.execute("INSERT INTO ledgers VALUES ('a', 1, '{\"n\": 1}')")
        conn.execute(f"UPDATE ledgers SET total = {big}, doc = '{{\"n\": {big}}}'")
    rows = pulled(pg_dsn)
    assert [(r["field"], r["old"], r["new"]) for r in rows if r["op"] == "UPDATE"] == [
        ("doc.n", 1, big), ("total", 1, big)]
