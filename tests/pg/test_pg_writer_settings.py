"""audit.pg: the writer scope of the instrumentation, carried into the writing transaction
for the capture trigger, with psycopg and with SQLAlchemy."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import psycopg
import pytest
from pg_events import pulled
from psycopg.conninfo import conninfo_to_dict

import audit
from audit import pg as audit_pg
from collectors.pg import install

sqlalchemy = pytest.importorskip("sqlalchemy")


@pytest.fixture
def blocks(pg_dsn) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE blocks (id text PRIMARY KEY, status text, version int)")
        conn.execute("INSERT INTO blocks VALUES ('block-A', 'idle', 1)")
    install(pg_dsn, "blocks", version_column="version", entity_type="block")
    return pg_dsn


def last_write(dsn: str) -> tuple:
    last = pulled(dsn)[-1]
    return tuple(last[k] for k in ("writer", "actor", "base_version", "version", "source_ts"))


def bump(execute, status: str) -> None:
    execute(f"UPDATE blocks SET status = '{status}', version = version + 1")


def test_a_psycopg_transaction_carries_the_writer_scope(blocks):
    with psycopg.connect(blocks) as conn, audit.writer("workflow", actor="engine-1"), \
            audit_pg.transaction(conn, base_version=7,
                                 source_ts=datetime(2026, 3, 1, 12, tzinfo=UTC)):
        bump(conn.execute, "running")
    assert last_write(blocks) == ("workflow", "engine-1", 7, 2,
                                  datetime(2026, 3, 1, 12, tzinfo=UTC))


def test_a_second_call_in_one_transaction_leaves_nothing_of_the_first(blocks):
    with psycopg.connect(blocks, application_name="api") as conn:
        with audit.writer("workflow", actor="engine-1"):
            audit_pg.set_local(conn, base_version=7)
        audit_pg.set_local(conn)  # outside any scope: the trigger's fallbacks apply
        bump(conn.execute, "done")
    assert last_write(blocks) == ("api", None, 1, 2, None)


def test_settings_end_with_the_transaction(blocks):
    with psycopg.connect(blocks) as conn:
        with audit.writer("workflow"), conn.transaction():
            audit_pg.set_local(conn.cursor())  # a cursor does as well as its connection
            bump(conn.execute, "running")
        assert last_write(blocks)[0] == "workflow"
        with conn.transaction():
            bump(conn.execute, "done")
    assert last_write(blocks)[0] == "postgres"


def engine_for(dsn: str):
    parts = conninfo_to_dict(dsn)
    url = sqlalchemy.engine.URL.create(
        "postgresql+psycopg", username=parts["user"], database=parts["dbname"],
        query={"host": parts["host"], "port": parts["port"]})
    return sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)


def test_an_instrumented_sqlalchemy_engine_sets_them_at_every_begin(blocks):
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    engine = engine_for(blocks)
    audit_pg.instrument_sqlalchemy(engine)
    audit_pg.instrument_sqlalchemy(engine)  # twice is once
    with audit.writer("user", actor="u-7"), engine.begin() as conn:
        bump(lambda q: conn.execute(text(q)), "edited")
    assert last_write(blocks)[:2] == ("user", "u-7")

    with audit.writer("polling_sync"), Session(engine) as session:
        bump(lambda q: session.execute(text(q)), "synced")
        session.commit()
    assert last_write(blocks)[:2] == ("polling_sync", None)

    with engine.begin() as conn:  # outside any scope: left alone
        bump(lambda q: conn.execute(text(q)), "idle")
    assert last_write(blocks)[:2] == ("postgres", None)
    engine.dispose()


def test_set_local_on_a_sqlalchemy_connection_and_session(blocks):
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    engine = engine_for(blocks)
    with audit.writer("instantiation"), engine.begin() as conn:
        audit_pg.set_local(conn, base_version=4)
        bump(lambda q: conn.execute(text(q)), "copied")
    assert last_write(blocks)[:4] == ("instantiation", None, 4, 2)
    with audit.writer("workflow"), Session(engine) as session:
        audit_pg.set_local(session)
        bump(lambda q: session.execute(text(q)), "running")
        session.commit()
    assert last_write(blocks)[0] == "workflow"
    engine.dispose()


def test_a_failure_is_counted_and_never_raised(blocks, fresh_audit):
    conn = psycopg.connect(blocks)
    conn.close()
    with audit.writer("workflow"):
        audit_pg.set_local(conn)
        audit_pg.set_local(object())
    sink = audit.stats()["sinks"]["postgres"]
    assert sink["errors"] == 2 and sink["dropped"] == 0
    with pytest.raises(TypeError, match="base_version"):
        audit_pg.settings(base_version="7")


def test_the_helper_needs_no_driver_and_nothing_of_the_auditing_side():
    code = (
        "import sys\n"
        "for name in ('psycopg', 'sqlalchemy', 'duckdb', 'typer'): sys.modules[name] = None\n"
        "import audit\nfrom audit import pg\n"
        "with audit.writer('workflow', actor='a'): print(pg.settings(base_version=3))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == str({"audit.writer": "workflow", "audit.actor": "a",
                                      "audit.source_ts": "", "audit.base_version": "3"})
