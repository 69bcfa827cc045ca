"""Each rewrite of collectors/stores/dialect.py, on both engines.

A construct runs in DuckDB and, translated, in chdb: the rows must be the same, values and
types. For the differences that are silent, the same construct translated without its
rewrite must give other rows (or fail): the test would catch the rewrite going missing.
"""

from __future__ import annotations

import math

import duckdb
import pytest

from collectors.store import open_store
from collectors.stores import dialect
from collectors.stores.dialect import Unsupported


@pytest.fixture(scope="module")
def ch(tmp_path_factory):
    store = open_store(f"chdb:{tmp_path_factory.mktemp('dialect') / 'store'}")
    yield store
    store.close()


def typed(rows):
    """Rows with each value's type, so that True and 1 differ."""
    return [tuple((type(v).__name__, v) for v in row) for row in rows]


def on_duckdb(sql, params=None, setup=()):
    con = duckdb.connect()
    try:
        for statement in setup:
            con.execute(statement)
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def on_clickhouse(ch, sql, params=None, setup=()):
    for statement in setup:
        ch.execute(statement)
    return ch.execute(sql, params).fetchall()


def without(ch, rewrite, sql, params=None, setup=()):
    """The rows ClickHouse gives for ``sql`` translated without ``rewrite`` (or the error)."""
    for statement in setup:
        ch.execute(statement)
    (statement,) = dialect.parse(sql)
    tree = dialect.bind(statement.tree, params)
    rewrites = [r for r in dialect.REWRITES if r is not rewrite]
    try:
        table = ch.query_arrow(dialect.to_clickhouse(tree, ch.session, rewrites))
    except Exception as exc:  # noqa: BLE001 - failing is one way of differing
        return exc
    return [tuple(r.values()) for r in table.to_pylist()]


# (rewrite, SQL, setup): the silent differences, each met on this project's SQL.
SILENT = {
    "lag is NULL before a partition's first row": (
        dialect.nullable_lag,
        "SELECT x, p, ps, q.a AS pa FROM (SELECT x, lag(x) OVER (ORDER BY x) AS p, "
        "lag(s) OVER (ORDER BY x) AS ps, lag({'a': x, 'b': s}) OVER (ORDER BY x) AS q "
        "FROM (SELECT 1 AS x, 'one' AS s UNION ALL SELECT 2, 'two') t) u ORDER BY x", ()),
    "-infinity is the lowest time, not NULL": (
        dialect.timestamps_to_microseconds,
        "SELECT count(*) AS n FROM (SELECT TIMESTAMPTZ '2020-01-01 00:00:00+00' AS ts) t "
        "WHERE ts >= '-infinity'::TIMESTAMPTZ AND ts <= 'infinity'::TIMESTAMPTZ", ()),
    "casts keep microseconds": (
        dialect.timestamps_to_microseconds,
        "SELECT CAST('2020-01-01 00:00:00.123456+00' AS TIMESTAMPTZ) AS ts", ()),
    "flatten removes one level": (
        dialect.flatten_one_level,
        "SELECT flatten(list(p)) AS f FROM (SELECT [[1, 2], [3, 4]] AS p) t", ()),
    "a missing map key is NULL": (
        dialect.map_lookups,
        "WITH p AS (SELECT MAP {'a': 1} AS m) SELECT m['a'] AS a, m['b'] AS b FROM p", ()),
    "parallel unnests walk side by side": (
        dialect.parallel_unnests,
        "SELECT * FROM (SELECT unnest(['a', 'b']) AS k, unnest([1, 2]) AS v) ORDER BY k", ()),
    "row_number is a signed integer": (
        dialect.signed_row_number,
        "SELECT len(list_distinct(flatten(list([[rn, 5], [1::BIGINT, 5]])))) AS n FROM "
        "(SELECT row_number() OVER (ORDER BY x) AS rn FROM (SELECT 1 AS x) t) u", ()),
    "halves round away from zero": (
        dialect.round_half_away_from_zero,
        "SELECT round(0.0625::DOUBLE, 3) AS a, round(-0.0625::DOUBLE, 3) AS b, "
        "round(2.5::DOUBLE) AS c", ()),
    "comparisons are booleans": (
        dialect.boolean_columns,
        "SELECT 1 = 1 AS yes, coalesce(NULL = 1, false) AS no", ()),
    "a selected e.old is named old": (
        dialect.projection_names,
        "SELECT b.x FROM (SELECT 1 AS x) a JOIN (SELECT 1 AS x) b ON a.x = b.x", ()),
}

# Differences that fail loudly in ClickHouse without their rewrite.
LOUD = {
    "getvariable": (dialect.substitute_variables, "SELECT getvariable('v') + 1 AS v",
                    ("SET VARIABLE v = 41",)),
    "an unset list variable's dead branch": (
        dialect.fold_unset_variables,
        "SELECT count(*) AS n FROM (SELECT 'x' AS e) t WHERE getvariable('l') IS NULL "
        "OR e IN (SELECT unnest(getvariable('l')))", ("SET VARIABLE l = NULL::VARCHAR[]",)),
    "MAP literals": (dialect.map_literals,
                     "SELECT m['a'] AS a FROM (SELECT MAP {'a': 1} AS m) t", ()),
    "list(x ORDER BY k)": (
        dialect.ordered_lists,
        "SELECT list(x ORDER BY y), list(x ORDER BY y DESC) FROM "
        "(SELECT 1 AS x, 2 AS y UNION ALL SELECT 2, 1 UNION ALL SELECT 3, 3) t", ()),
    "epoch": (dialect.epoch_functions,
              "SELECT epoch(TIMESTAMPTZ '2020-01-01 00:00:00.5+00') AS s, "
              "epoch_us(TIMESTAMPTZ '2020-01-01 00:00:00.5+00') AS us", ()),
    "struct literals": (
        dialect.named_tuples,
        "SELECT s.rn, s.same FROM (SELECT {'rn': rn - 1, 'same': rn} AS s "
        "FROM (SELECT 5 AS rn) t) u", ()),
    "bit operators and bit_count": (
        dialect.bitwise_functions,
        "SELECT bit_count(bit_or(1::UBIGINT << (v & 63))) AS bits FROM "
        "(SELECT -1::BIGINT AS v UNION ALL SELECT 65 UNION ALL SELECT 1) t", ()),
    "temporary views": (
        dialect.session_views_as_ctes, "SELECT x + 1 FROM audit_v",
        ("CREATE OR REPLACE TEMP VIEW audit_v AS SELECT 1 AS x",)),
}


@pytest.mark.parametrize("case", sorted(SILENT))
def test_silent_differences_are_rewritten(ch, case):
    rewrite, sql, setup = SILENT[case]
    expected = on_duckdb(sql, setup=setup)
    assert typed(on_clickhouse(ch, sql, setup=setup)) == typed(expected)
    names = [d[0] for d in ch.execute(sql).description]
    con = duckdb.connect()
    assert names == [d[0] for d in con.execute(sql).description]
    con.close()
    # Without the rewrite ClickHouse answers, with other rows (or other names).
    bare = without(ch, rewrite, sql, setup=setup)
    if rewrite is dialect.projection_names:
        return  # same rows; what differs is the name, checked above and below
    assert not isinstance(bare, Exception), bare
    assert typed(bare) != typed(expected)


def test_without_projection_names_the_column_is_qualified(ch):
    sql = SILENT["a selected e.old is named old"][1]
    (statement,) = dialect.parse(sql)
    rewrites = [r for r in dialect.REWRITES if r is not dialect.projection_names]
    bare = ch.query_arrow(dialect.to_clickhouse(statement.tree, ch.session, rewrites))
    assert bare.column_names != ["x"]


@pytest.mark.parametrize("case", sorted(LOUD))
def test_loud_differences_are_rewritten(ch, case):
    rewrite, sql, setup = LOUD[case]
    expected = on_duckdb(sql, setup=setup)
    assert typed(on_clickhouse(ch, sql, setup=setup)) == typed(expected)
    assert isinstance(without(ch, rewrite, sql, setup=setup), Exception)


# Differences measured on other engines or versions that ClickHouse 26 does not have: kept
# as tests, so that an upgrade that brings one back is caught.
NONE_NOW = {
    "row_number beside a signed number": (
        "SELECT [row_number() OVER (ORDER BY x), x] AS pair, "
        "x - row_number() OVER (ORDER BY x) AS d FROM (SELECT -7::BIGINT AS x) t"),
    "greatest and least skip NULL": (
        "SELECT greatest(1, NULL, 3) AS g, least(NULL, 2.5::DOUBLE) AS l"),
    "last_value IGNORE NULLS of a struct": (
        "SELECT n, v.a AS a FROM (SELECT n, last_value(s IGNORE NULLS) OVER (ORDER BY n "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS v FROM (SELECT 1 AS n, NULL AS s "
        "UNION ALL SELECT 2, {'a': 5} UNION ALL SELECT 3, NULL) t) u ORDER BY n"),
}


@pytest.mark.parametrize("case", sorted(NONE_NOW))
def test_differences_clickhouse_no_longer_has(ch, case):
    sql = NONE_NOW[case]
    assert typed(on_clickhouse(ch, sql)) == typed(on_duckdb(sql))


def test_minus_zero_keeps_its_sign(ch):
    sql = "SELECT round(-0.000001::DOUBLE, 3) AS z"
    (duck,), (click,) = on_duckdb(sql), on_clickhouse(ch, sql)
    assert math.copysign(1, duck[0]) == math.copysign(1, click[0]) == -1


def test_join_use_nulls_is_set(ch):
    sql = ("SELECT b.y FROM (SELECT 1 AS k) a "
           "LEFT JOIN (SELECT 2 AS k, 3 AS y) b ON a.k = b.k")
    assert on_clickhouse(ch, sql) == on_duckdb(sql) == [(None,)]
    raw = ch.translate(sql)[0] + " SETTINGS join_use_nulls = 0"
    assert ch.query_arrow(raw).to_pylist() != [{"y": None}]


def test_parameters_of_every_kind(ch):
    from datetime import UTC, datetime

    sql = ("SELECT $s::VARCHAR AS s, $i::BIGINT AS i, $d::DOUBLE AS d, $t::TIMESTAMPTZ AS t, "
           "$l::VARCHAR[] AS l, $b::BOOLEAN AS b, $none::BIGINT AS none")
    params = {"s": "it's a \\ back'slash", "i": 2**62, "d": 0.1,
              "t": datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
              "l": ["a'b", "c\\d", None], "b": True, "none": None}
    assert typed(on_clickhouse(ch, sql, params)) == typed(on_duckdb(sql, params))


def test_a_question_mark_in_a_string_is_no_parameter(ch):
    assert ch.execute("SELECT '?' AS q, ? AS p -- ? too", [1]).fetchall() == [("?", 1)]


def test_an_alias_that_would_hide_a_column_is_refused(ch):
    with pytest.raises(Unsupported, match="alias 'x'"):
        ch.execute("SELECT x + 1 AS x, x * 2 AS y FROM (SELECT 1 AS x) t")


def test_constructs_no_rewrite_knows_are_refused(ch):
    with pytest.raises(Unsupported):
        ch.execute("SELECT flatten([[1], [2]])")
    with pytest.raises(Unsupported):
        ch.execute("SELECT list(x ORDER BY 'k' DESC) FROM (SELECT 1 AS x) t")


def test_a_temporary_table_is_materialised_or_inlined(ch):
    script = ("CREATE OR REPLACE TEMP TABLE audit_t AS SELECT 1 AS x UNION ALL SELECT 2; "
              "SELECT sum(x) FROM audit_t")
    assert ch.execute(script).fetchall() == [(3,)]
    inline = dialect.Session(materialise=False)
    (query,) = dialect.translate(script, None, inline)
    assert "TEMPORARY" not in query and ch.query_arrow(query).column(0).to_pylist() == [3]
