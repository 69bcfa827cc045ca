"""The detectors' settings are written once, in queries/defaults.sql (issue 19, item 4): the
Python side reads its defaults from that file, and the SQL files run alone, as in the DuckDB
shell, with the same defaults and the same findings as `audit check`."""

from __future__ import annotations

import dataclasses

import duckdb
import pytest
from detect_histories import load, one_of_each

from audit.config import Config
from queries.commit_order import sql
from queries.runner import DETECTORS, check

SETTINGS = [f.name for f in dataclasses.fields(Config) if f.name != "source"]


def _variables(con: duckdb.DuckDBPyConnection) -> dict:
    return {name: con.execute(f"SELECT getvariable('audit_{name}')").fetchall()[0][0]
            for name in SETTINGS}


def test_python_reads_the_values_the_sql_sets():
    con = duckdb.connect()
    con.execute(sql("defaults"))
    assert _variables(con) == {name: getattr(Config(), name) for name in SETTINGS}


def test_a_variable_set_before_the_defaults_keeps_its_value():
    con = duckdb.connect()
    con.execute("SET VARIABLE audit_oscillation_window_s = 120")
    con.execute("SET VARIABLE audit_writer_priorities = map(['bot'], [7])")
    con.execute(sql("defaults"))
    variables = _variables(con)
    assert variables["oscillation_window_s"] == 120
    assert variables["writer_priorities"] == {"bot": 7}
    assert variables["priority_window_s"] == Config().priority_window_s


@pytest.fixture(scope="module")
def history_store(tmp_path_factory):
    db = tmp_path_factory.mktemp("defaults") / "s.duckdb"
    load(db, one_of_each())
    return db


def test_the_sql_files_alone_find_what_check_finds(history_store):
    """defaults.sql, transitions.sql, then each detector, on a plain connection."""
    con = duckdb.connect(str(history_store), read_only=True)
    expected = {}
    for f in check(con):
        expected.setdefault(f.detector, set()).add((f.entity, f.field))
    shell = duckdb.connect(str(history_store), read_only=True)
    shell.execute(sql("defaults"))
    shell.execute(sql("transitions"))
    found = {}
    for name in DETECTORS:
        for entity, field, *_ in shell.execute(sql(name)).fetchall():
            found.setdefault(name, set()).add((entity, field))
    assert found == expected
    assert set(found) == set(DETECTORS)


def test_without_the_settings_transitions_stops_with_a_clear_error(history_store):
    shell = duckdb.connect(str(history_store), read_only=True)
    with pytest.raises(duckdb.Error, match=r"read queries/defaults\.sql first"):
        shell.execute(sql("transitions"))
