"""DuckDB SQL, as this project writes it, run on ClickHouse: a list of named rewrites.

The detectors (queries/*.sql) and the statements in the Python modules are written once, in
DuckDB's dialect, and stay the readable master. sqlglot parses them and writes ClickHouse;
what sqlglot does not know about the two engines' *meaning* is done by the rewrites below,
one known difference each, in the order they run (`REWRITES`). Several of them are silent
when missed: ClickHouse returns rows, just not the same ones. Each of those has a test that
runs the construct on both engines and shows the difference without its rewrite
(tests/stores/test_dialect.py); all of them run under the detectors on both engines in
tests/stores/test_differential.py.

Two things DuckDB keeps in its connection are kept here, client-side, by `Session`:
variables (`SET VARIABLE`, read with `getvariable`) and temporary views and tables, which a
query that reads them gets as common table expressions (or, for a table the store
materialises, as a temporary table of its own session: collectors/stores/clickhouse.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.tokens import TokenType

from audit.errors import AuditError

# Every query runs with these. join_use_nulls: an outer join's missing side is NULL, as in
# DuckDB (ClickHouse's default fills in 0 and ''). Named tuples: DuckDB's structs.
SETTINGS: dict[str, int] = {
    "join_use_nulls": 1,
    "enable_named_columns_in_function_tuple": 1,
    # Parameters arrive as literals: the runner looks witnesses up by a list of every seq
    # the detectors named, which is long on a large store (ClickHouse's default: 256 KiB).
    "max_query_size": 1 << 30,
    # An insert through a cluster's Distributed table returns once the shards have it, so
    # that the next statement of an ingest (duplicates, seq) sees it.
    "distributed_foreground_insert": 1,
}

_MARK = "__audit_param_"
_DUCK = sqlglot.Dialect.get_or_raise("duckdb")
# A statement's leading comments (a file's header) come before its SET.
_SET_VARIABLE = re.compile(r"^(?:\s*--[^\n]*\n)*\s*SET\s+VARIABLE\s+(\w+)\s*=\s*(.+?)\s*;?\s*$",
                           re.I | re.S)
# DateTime64's range in ClickHouse (years 1 to 9999), the ends standing for ±infinity.
_LOWEST = "0001-01-01 00:00:00.000000"
_HIGHEST = "9999-12-31 23:59:59.999999"
_TIMESTAMP_TYPES = (exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.TIMESTAMP)


class Unsupported(AuditError):
    """A construct none of the rewrites knows how to carry over: loud, never silent."""


@dataclass(frozen=True)
class Statement:
    """One statement of a DuckDB script: ``kind`` is set (a variable), view, table (both
    temporary) or query; ``tree`` its parsed form with parameters as markers."""

    kind: str
    name: str | None
    tree: exp.Expression


@dataclass
class Session:
    """What a DuckDB connection would hold between statements."""

    variables: dict[str, exp.Expression] = field(default_factory=dict)
    views: dict[str, exp.Expression] = field(default_factory=dict)  # name -> bound SELECT
    # Temporary tables: made real tables of the ClickHouse session (True), or read as
    # common table expressions like the views (False: what runs on each shard of a cluster).
    materialise: bool = True


# ---------------------------------------------------------------------------------------
# Parsing: statements, with `?` and `$name` parameters replaced by markers, cached by text.


def _marked(text: str) -> str:
    """``?`` -> marker n, ``$name`` -> marker name, found by DuckDB's tokenizer (never
    inside a string or a comment). Parsed once per text; values are bound per call."""
    out, last, n = [], 0, 0
    tokens = _DUCK.tokenize(text)
    for i, tok in enumerate(tokens):
        question = tok.token_type in (TokenType.PLACEHOLDER, TokenType.QDCOLON)
        if question and tok.text.startswith("?"):
            out.append(text[last : tok.start] + f"{_MARK}{n}" + tok.text[1:])
            n += 1
            last = tok.end + 1
        elif tok.token_type == TokenType.PARAMETER and i + 1 < len(tokens):
            name = tokens[i + 1]
            out.append(text[last : tok.start] + f"{_MARK}{name.text}")
            last = name.end + 1
    out.append(text[last:])
    return "".join(out)


def _split(text: str) -> list[str]:
    """The statements of a script, cut at the semicolons the tokenizer sees."""
    parts, start = [], 0
    for tok in _DUCK.tokenize(text):
        if tok.token_type == TokenType.SEMICOLON:
            parts.append(text[start : tok.start])
            start = tok.end + 1
    parts.append(text[start:])
    return [p for p in parts if _DUCK.tokenize(p)]


@lru_cache(maxsize=512)
def parse(text: str) -> tuple[Statement, ...]:
    """The statements of ``text`` (DuckDB SQL), each classified and parsed."""
    out = []
    for part in _split(_marked(text)):
        setting = _SET_VARIABLE.match(part)
        if setting:
            value = sqlglot.parse_one(f"SELECT {setting.group(2)}", read="duckdb")
            out.append(Statement("set", setting.group(1).lower(), value.expressions[0]))
            continue
        tree = sqlglot.parse_one(part, read="duckdb")
        if isinstance(tree, exp.Create) and tree.args.get("properties") and _temporary(tree):
            kind = "view" if tree.kind == "VIEW" else "table"
            out.append(Statement(kind, tree.this.name.lower(), tree.expression))
        elif isinstance(tree, exp.Command):
            raise Unsupported(f"not carried over to ClickHouse: {part.strip()[:60]}…")
        else:
            out.append(Statement("query", None, tree))
    return tuple(out)


def _temporary(tree: exp.Create) -> bool:
    props = tree.args["properties"].expressions
    return any(isinstance(p, exp.TemporaryProperty) for p in props)


# ---------------------------------------------------------------------------------------
# Binding values: parameters and variables become literals in the tree.


def literal(value: Any) -> exp.Expression:
    """A Python value as a DuckDB literal (timestamps as TIMESTAMPTZ, in UTC)."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | Decimal):
        return exp.Literal.number(str(value))
    if isinstance(value, float):
        return exp.Literal.number(repr(value))
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        text = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return exp.cast(exp.Literal.string(text), exp.DataType.Type.TIMESTAMPTZ)
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
    if isinstance(value, list | tuple):
        # Written out here, once: a list of 100,000 seqs as a tree of literals would cost
        # seconds in every rewrite and in sqlglot's writer.
        return exp.Var(this="[" + ",".join(_element(v) for v in value) + "]")
    raise Unsupported(f"no ClickHouse literal for a {type(value).__name__}")


def _element(value: Any) -> str:
    """An array element in ClickHouse's syntax."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        return repr(float(value))
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_element(v) for v in value) + "]"
    raise Unsupported(f"no ClickHouse literal for a {type(value).__name__} in a list")


def quote(text: str) -> str:
    """``text`` as a ClickHouse string literal (backslash and quote escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def bind(tree: exp.Expression, params: Sequence[Any] | Mapping[str, Any] | None) -> exp.Expression:
    """A copy of ``tree`` with its parameter markers replaced by ``params``' values."""
    tree = tree.copy()
    if isinstance(params, Mapping):
        values = {str(k): v for k, v in params.items()}
    else:
        values = {str(i): v for i, v in enumerate(params or ())}

    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table and node.name.startswith(_MARK):
            key = node.name[len(_MARK) :]
            if key not in values:
                raise AuditError(f"no value given for SQL parameter {key}")
            return literal(values[key])
        return node

    return tree.transform(replace, copy=False)


# ---------------------------------------------------------------------------------------
# The rewrites. Each takes a bound DuckDB tree (and the session) and returns a tree; the
# last step writes it in ClickHouse's dialect.


def substitute_variables(tree: exp.Expression, session: Session) -> exp.Expression:
    """`getvariable('x')` does not exist in ClickHouse: the value the session holds for x
    (NULL when unset, as in DuckDB)."""

    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and node.name.lower() == "getvariable":
            name = node.expressions[0].name.lower()
            value = session.variables.get(name)
            return value.copy() if value is not None else exp.null()
        return node

    return tree.transform(replace, copy=False)


def _is_null(node: exp.Expression) -> bool:
    while isinstance(node, exp.Cast | exp.Paren):
        node = node.this
    return isinstance(node, exp.Null)


def fold_unset_variables(tree: exp.Expression, session: Session) -> exp.Expression:
    """`getvariable(x) IS NULL OR <use of x>`: DuckDB never plans the branch an unset
    variable makes dead; ClickHouse type-checks it, and an unset list, `NULL::VARCHAR[]`,
    is an error there (no Array is Nullable). The NULL tests of literals are folded, and
    the ORs and ANDs they decide with them."""

    folded = False

    def fold(node: exp.Expression) -> exp.Expression:
        nonlocal folded
        out = _fold(node)
        folded = folded or out is not node
        return out

    while True:  # until nothing folds: a fold may let its parent fold
        folded = False
        tree = tree.transform(fold, copy=False)
        if not folded:
            return tree


def _fold(node: exp.Expression) -> exp.Expression:
    """One folding step at ``node`` (see fold_unset_variables)."""
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        if _is_null(node.this):
            return exp.true()
        if isinstance(node.this, exp.Literal | exp.Array | exp.Var | exp.Boolean):
            return exp.false()
    if isinstance(node, exp.Not) and isinstance(node.this, exp.Boolean):
        return exp.Boolean(this=not node.this.this)
    if isinstance(node, exp.Paren) and isinstance(node.this, exp.Boolean):
        return node.this
    if isinstance(node, exp.Or | exp.And):
        decides = isinstance(node, exp.Or)  # TRUE decides an OR, FALSE an AND
        sides = (node.this, node.expression)
        if any(isinstance(s, exp.Boolean) and s.this is decides for s in sides):
            return exp.Boolean(this=decides)
        rest = [s for s in sides if not isinstance(s, exp.Boolean)]
        if len(rest) < 2:
            return rest[0] if rest else exp.Boolean(this=not decides)
    return node


def session_views_as_ctes(tree: exp.Expression, session: Session) -> exp.Expression:
    """DuckDB's temporary views (and, when not materialised, tables) live in the session;
    a query that reads one gets it as a common table expression, with those it reads."""
    wanted: list[str] = []

    def visit(node: exp.Expression) -> None:
        for table in node.find_all(exp.Table):
            name = table.name.lower()
            if name in session.views and not table.db and name not in wanted:
                visit(session.views[name])
                wanted.append(name)

    visit(tree)
    if not wanted:
        return tree
    query = tree if isinstance(tree, exp.Query) else tree.expression
    if not isinstance(query, exp.Query):
        raise Unsupported("a session view read outside a query")
    own = query.args.get("with_")
    ctes = [exp.CTE(this=session.views[n].copy(), alias=exp.TableAlias(this=exp.to_identifier(n)))
            for n in wanted]
    if own is not None:
        ctes += own.expressions
    query.set("with_", exp.With(expressions=ctes))
    return tree


def nullable_lag(tree: exp.Expression, session: Session) -> exp.Expression:
    """`lag(x)` is NULL before a partition's first row in DuckDB; in ClickHouse it is the
    type's default (0, '') unless x is Nullable. Silent: every first transition would
    seem to have a prev. The argument is made Nullable; a struct member by member."""

    def nullable(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Struct):
            for member in node.expressions:
                member.set("expression", nullable(member.expression))
            return node
        return exp.Anonymous(this="toNullable", expressions=[node])

    for node in tree.find_all(exp.Lag, exp.Lead):
        node.set("this", nullable(node.this))
        if node.args.get("default") is not None:
            raise Unsupported("lag/lead with a default")
    return tree


MEMBER = "__audit_"  # prefix of a struct member's name on ClickHouse (see named_tuples)


def _tables_in_scope(node: exp.Expression) -> set[str]:
    """The names a column's qualifier can mean a table by: the sources (and their
    aliases) of its SELECT and, for a subquery in an expression, of the SELECTs around it
    (a CTE or a subquery in FROM sees no outer tables)."""
    names: set[str] = set()
    select = node.find_ancestor(exp.Select)
    while select is not None:
        sources = [select.args.get("from_"), *(select.args.get("joins") or [])]
        for source in filter(None, sources):
            item = source.this
            names.add(item.alias_or_name.lower())
            if isinstance(item, exp.Table):
                names.add(item.name.lower())
        wrapper = select.parent
        while isinstance(wrapper, exp.Subquery | exp.Paren | exp.Union):
            wrapper = wrapper.parent
        if isinstance(wrapper, exp.CTE | exp.From | exp.Join | exp.With) or wrapper is None:
            break
        select = select.find_ancestor(exp.Select)
    return names


def named_tuples(tree: exp.Expression, session: Session) -> exp.Expression:
    """DuckDB's struct literal `{'a': x}` is ClickHouse's named tuple `tuple(x AS a)`
    (with `enable_named_columns_in_function_tuple`, in `SETTINGS`). But an alias is seen
    by the whole SELECT in ClickHouse: `{'rn': rn - 1}` would turn every `rn` of it into
    `rn - 1` (silent). Members are named `__audit_a` instead, and every member access
    (`s.a`, `t.s.a`: a qualifier that is no table of the query) follows; rows handed back
    lose the prefix again (collectors/stores/clickhouse.py)."""
    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Struct):
            members = []
            for member in node.expressions:
                if not isinstance(member, exp.PropertyEQ):
                    raise Unsupported("a struct literal without member names")
                members.append(exp.alias_(member.expression, MEMBER + member.this.name))
            return exp.Anonymous(this="tuple", expressions=members)
        if isinstance(node, exp.Column) and node.table and (
                node.args.get("db") is not None
                or node.table.lower() not in _tables_in_scope(node)):
            node.set("this", exp.to_identifier(MEMBER + node.name))
        return node

    return tree.transform(replace, copy=False)


def projection_names(tree: exp.Expression, session: Session) -> exp.Expression:
    """A selected `e.old` is named `old` in DuckDB; in ClickHouse `e.old` when another table
    of the join has an `old` too, and the reader of the row finds no `old`. Such a
    column is given its bare name as an alias."""
    for select in tree.find_all(exp.Select):
        for projection in list(select.expressions):
            if (isinstance(projection, exp.Column) and projection.table
                    and not isinstance(projection.this, exp.Star)):
                projection.replace(exp.alias_(projection.copy(), projection.name))
    return tree


def aliases_do_not_shadow(tree: exp.Expression, session: Session) -> exp.Expression:
    """In ClickHouse an alias wins over a column of the same name anywhere in its SELECT;
    in DuckDB the column wins. A statement where that would differ is refused: `x + 1 AS
    x, x * 2 AS y` gives y = 2x in DuckDB and 2x + 2 in ClickHouse."""
    for select in tree.find_all(exp.Select):
        for projection in select.expressions:
            if not isinstance(projection, exp.Alias):
                continue
            name = projection.alias.lower()
            own = projection.this
            if isinstance(own, exp.Column) and own.name.lower() == name:
                continue
            for column in select.find_all(exp.Column):
                if (column.name.lower() == name and not column.table
                        and column.find_ancestor(exp.Select) is select
                        and not column.find_ancestor(exp.Order)
                        and not _inside(column, own)):
                    raise Unsupported(f"alias {name!r} would hide the column {name!r} in "
                                      "ClickHouse")
    return tree


def star_beside_join(tree: exp.Expression, session: Session) -> exp.Expression:
    """`SELECT e.*, … FROM t e JOIN t before …`: where the joined tables share column names,
    ClickHouse names the star's columns `e.entity`, `e.seq`, … (DuckDB: `entity`, `seq`),
    and a later `e2.seq` finds nothing. The other tables of such a join are read through a
    subquery that gives the columns the query takes from them names of their own."""
    for select in list(tree.find_all(exp.Select)):
        stars = [p for p in select.expressions
                 if isinstance(p, exp.Column) and isinstance(p.this, exp.Star) and p.table]
        joins = select.args.get("joins") or []
        if not stars or not joins:
            continue
        starred = {p.table.lower() for p in stars}
        sources = [select.args["from_"].this, *(j.this for j in joins)]
        for source in sources:
            alias = source.alias_or_name.lower()
            if alias in starred or not isinstance(source, exp.Table):
                continue
            used = sorted({c.name for c in select.find_all(exp.Column)
                           if c.table.lower() == alias and not isinstance(c.this, exp.Star)
                           and c.find_ancestor(exp.Select) is select})
            if not used:
                continue
            inner = exp.select(*(exp.alias_(exp.column(c), f"{alias}__{c}") for c in used))
            inner = inner.from_(exp.Table(this=source.this.copy(), db=source.args.get("db")))
            for column in list(select.find_all(exp.Column)):
                if column.table.lower() == alias and column.find_ancestor(exp.Select) is select:
                    column.set("this", exp.to_identifier(f"{alias}__{column.name}"))
            source.replace(exp.Subquery(this=inner,
                                        alias=exp.TableAlias(this=exp.to_identifier(alias))))
    return tree


def _inside(node: exp.Expression, root: exp.Expression) -> bool:
    while node is not None:
        if node is root:
            return True
        node = node.parent
    return False


def timestamps_to_microseconds(tree: exp.Expression, session: Session) -> exp.Expression:
    """TIMESTAMPTZ becomes ClickHouse's `DateTime`, which drops sub-seconds: every cast and
    typed literal becomes DateTime64(6, 'UTC'). `'-infinity'` and `'infinity'` become NULL
    there (silent: a range open at one end would select nothing): the ends of DateTime64's
    range stand for them. A literal's text is read here, so any RFC 3339 form is kept."""

    for node in list(tree.find_all(exp.Cast)):
        if node.to.this in _TIMESTAMP_TYPES:
            inner = node.this
            if isinstance(inner, exp.Literal) and inner.is_string:
                inner.replace(exp.Literal.string(_timestamp_text(inner.this)))
            node.set("to", _datetime64())
    return tree


def _datetime64() -> exp.DataType:
    # Nullable, as sqlglot writes every cast: a cast passes NULL through in DuckDB.
    datatype = exp.DataType.build("DateTime64(6, 'UTC')", dialect="clickhouse")
    datatype.set("nullable", True)
    return datatype


def _timestamp_text(text: str) -> str:
    word = text.strip().lower()
    if word in ("-infinity", "infinity", "+infinity"):
        return _LOWEST if word.startswith("-") else _HIGHEST
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError as exc:
        raise Unsupported(f"timestamp literal {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def epoch_functions(tree: exp.Expression, session: Session) -> exp.Expression:
    """`epoch(ts)` (seconds, with microseconds) and `epoch_us(ts)` have no namesakes in
    ClickHouse. Computed the way DuckDB does, microseconds over 1e6 in a double, so that
    differences of them (window tests, facts) are the same to the last bit."""

    def micros(arg: exp.Expression) -> exp.Expression:
        return exp.Anonymous(this="toUnixTimestamp64Micro", expressions=[arg])

    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.TimeToUnix):
            return exp.Div(this=micros(node.this), expression=exp.Literal.number("1e6"))
        if isinstance(node, exp.Anonymous) and node.name.lower() == "epoch_us":
            return micros(node.expressions[0])
        return node

    return tree.transform(replace, copy=False)


def signed_row_number(tree: exp.Expression, session: Session) -> exp.Expression:
    """ClickHouse's `row_number()` is unsigned. Silent where it meets a signed number: the
    pairs [rn, seq] and [rn - 1, seq] of one change were two distinct lists, and a burst
    counted a change twice. Made a signed 64-bit integer, as DuckDB's BIGINT."""

    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Window) and isinstance(node.this, exp.RowNumber):
            return exp.Anonymous(this="toInt64", expressions=[node])
        return node

    return tree.transform(replace, copy=False)


def ordered_lists(tree: exp.Expression, session: Session) -> exp.Expression:
    """`list(x ORDER BY k…)` has no ClickHouse form: the values are gathered as tuples
    (k…, x), sorted, and x taken back out. A descending key is negated: numbers only (a
    descending text key is refused)."""

    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order):
            order = node.this
            keys = []
            for key in order.expressions:
                if key.args.get("desc"):
                    if isinstance(key.this, exp.Literal) and key.this.is_string:
                        raise Unsupported("list(… ORDER BY text DESC)")
                    keys.append(exp.Neg(this=exp.Anonymous(
                        this="toInt64", expressions=[key.this])))
                else:
                    keys.append(key.this)
            packed = exp.Tuple(expressions=[*keys, order.this])
            gathered = exp.Anonymous(this="groupArray", expressions=[packed])
            pick = exp.Lambda(
                this=exp.Anonymous(this="tupleElement", expressions=[
                    exp.column("__audit_t"), exp.Literal.number(len(keys) + 1)]),
                expressions=[exp.to_identifier("__audit_t")],
            )
            sort = exp.Anonymous(this="arraySort", expressions=[gathered])
            return exp.Anonymous(this="arrayMap", expressions=[pick, sort])
        if isinstance(node, exp.ArrayAgg):
            return exp.Anonymous(this="groupArray", expressions=[node.this])
        return node

    return tree.transform(replace, copy=False)


def flatten_one_level(tree: exp.Expression, session: Session) -> exp.Expression:
    """DuckDB's `flatten` removes one level of nesting, ClickHouse's every level (silent:
    a list of [rn, seq] pairs became one list of numbers). `flatten(list(x))` is
    ClickHouse's `groupArrayArray(x)`; another use of flatten is refused."""

    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Flatten):
            inner = node.this
            if isinstance(inner, exp.ArrayAgg) and not isinstance(inner.this, exp.Order):
                return exp.Anonymous(this="groupArrayArray", expressions=[inner.this])
            raise Unsupported("flatten of anything but list(…)")
        return node

    return tree.transform(replace, copy=False)


def _map_aliases(tree: exp.Expression) -> set[str]:
    names = set()
    for alias in tree.find_all(exp.Alias):
        node = alias.this
        while isinstance(node, exp.Cast | exp.Coalesce | exp.Paren):
            if isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.MAP:
                names.add(alias.alias.lower())
                break
            node = node.this
        if isinstance(node, exp.Map | exp.ToMap | exp.VarMap) or (
                isinstance(node, exp.Anonymous) and node.name in ("map", "mapFromArrays")):
            names.add(alias.alias.lower())
    return names


def map_literals(tree: exp.Expression, session: Session) -> exp.Expression:
    """DuckDB's `MAP {k: v, …}` is ClickHouse's `map(k, v, …)`, and its map(keys, values)
    is mapFromArrays. (sqlglot would write the literal's members as a struct.)"""

    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Map):
            return exp.Anonymous(this="mapFromArrays",
                                 expressions=[node.args["keys"], node.args["values"]])
        if isinstance(node, exp.ToMap) and isinstance(node.this, exp.Struct):  # MAP {k: v}
            pairs = []
            for member in node.this.expressions:
                key = member.this
                pairs += [exp.Literal.string(key.name) if isinstance(key, exp.Identifier)
                          else key, member.expression]
            return exp.Anonymous(this="map", expressions=pairs)
        return node

    return tree.transform(replace, copy=False)


def map_lookups(tree: exp.Expression, session: Session) -> exp.Expression:
    """A missing key: NULL in DuckDB, the type's default (0) in ClickHouse (silent: a
    writer without a configured priority would get 0, not the default). A lookup in a
    map-valued column becomes `if(mapContains(m, k), m[k], NULL)`."""
    maps = _map_aliases(tree)

    def replace(node: exp.Expression) -> exp.Expression:
        if (isinstance(node, exp.Bracket) and isinstance(node.this, exp.Column)
                and node.this.name.lower() in maps and len(node.expressions) == 1):
            key = node.expressions[0]
            lookup = exp.Bracket(this=node.this.copy(), expressions=[key.copy()])
            lookup.set("offset", node.args.get("offset"))
            return exp.If(
                this=exp.Anonymous(this="mapContains", expressions=[node.this.copy(), key.copy()]),
                true=lookup, false=exp.null())
        return node

    return tree.transform(replace, copy=False)


def parallel_unnests(tree: exp.Expression, session: Session) -> exp.Expression:
    """`SELECT unnest(a), unnest(b)` walks a and b side by side in DuckDB; two arrayJoins
    in ClickHouse make every pair (silent). They become one arrayJoin of arrayZip(a, b)."""
    for select in list(tree.find_all(exp.Select)):
        unnests = [e for e in select.expressions
                   if isinstance(e.unalias(), exp.Explode)]
        if len(unnests) < 2:
            continue
        zipped = exp.Anonymous(this="arrayZip",
                               expressions=[e.unalias().this.copy() for e in unnests])
        first = True
        for i, projection in enumerate(unnests, start=1):
            source: exp.Expression = (
                exp.alias_(exp.Anonymous(this="arrayJoin", expressions=[zipped]), "__audit_z")
                if first else exp.column("__audit_z")
            )
            first = False
            picked = exp.Anonymous(this="tupleElement",
                                   expressions=[source, exp.Literal.number(i)])
            name = projection.alias_or_name if isinstance(projection, exp.Alias) else f"_{i}"
            projection.replace(exp.alias_(picked, name))
    return tree


def _is_boolean(node: exp.Expression) -> bool:
    if isinstance(node, exp.Paren):
        return _is_boolean(node.this)
    if isinstance(node, exp.Boolean | exp.Predicate | exp.Connector | exp.Not | exp.Is
                  | exp.In | exp.Between | exp.NullSafeEQ | exp.NullSafeNEQ):
        return True
    if isinstance(node, exp.Coalesce):
        return all(_is_boolean(a) or isinstance(a, exp.Null)
                   for a in [node.this, *node.expressions])
    return False


def boolean_columns(tree: exp.Expression, session: Session) -> exp.Expression:
    """ClickHouse's comparisons yield UInt8: a column computed from one would reach the
    findings' facts as 1, not true. Such a column is cast to Bool."""
    for select in tree.find_all(exp.Select):
        for projection in select.expressions:
            if isinstance(projection, exp.Alias) and _is_boolean(projection.this):
                projection.set("this", exp.Cast(
                    this=projection.this, to=exp.DataType.build("BOOLEAN")))
    return tree


def round_half_away_from_zero(tree: exp.Expression, session: Session) -> exp.Expression:
    """`round(x, n)` of a double rounds a half away from zero in DuckDB and to even in
    ClickHouse (silent: 0.0625 s is 0.063 in one and 0.062 in the other). DuckDB's own
    steps instead: y = x * 10^n; trunc(y), or one further from zero when |y - trunc(y)| is a
    half or more (exact in floating point); divided by 10^n. -0.0 stays -0.0."""

    def replace(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Round):
            return node
        digits = node.args.get("decimals")
        scale = exp.Pow(this=exp.Literal.number(10), expression=digits or exp.Literal.number(0))
        y = exp.Mul(this=exp.Paren(this=node.this), expression=scale)
        whole = exp.Anonymous(this="trunc", expressions=[y.copy()])
        part = exp.Abs(this=exp.Sub(this=y.copy(), expression=whole.copy()))
        # `whole + 0` would turn -0.0 into 0.0: the half test picks the sum or whole itself.
        away = exp.Add(this=whole.copy(), expression=exp.Anonymous(
            this="sign", expressions=[y.copy()]))
        rounded = exp.Div(
            this=exp.Paren(this=exp.If(this=exp.GTE(this=part, expression=exp.Literal.number(
                "0.5")), true=away, false=whole)),
            expression=scale.copy())
        return exp.Paren(this=rounded)

    return tree.transform(replace, copy=False)


def insert_or_ignore(tree: exp.Expression, session: Session) -> exp.Expression:
    """ClickHouse has no `INSERT OR IGNORE` / `OR REPLACE`: the tables written that way
    are ReplacingMergeTrees keyed like DuckDB's primary key (collectors/stores/schema.py),
    which keep one row per key; a plain INSERT."""
    if isinstance(tree, exp.Insert) and tree.args.get("alternative"):
        tree.set("alternative", None)
    return tree


def list_functions(tree: exp.Expression, session: Session) -> exp.Expression:
    """DuckDB's `len` of a list (the project's only use of len) and `list_sort` are
    ClickHouse's `length` and `arraySort`; sqlglot would write CHAR_LENGTH, which ClickHouse
    refuses for an array, and ARRAY_SORT, which it does not know."""

    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Length):
            return exp.Anonymous(this="length", expressions=[node.this])
        if isinstance(node, exp.ArraySort):
            return exp.Anonymous(this="arraySort", expressions=[node.this])
        return node

    return tree.transform(replace, copy=False)


def bitwise_functions(tree: exp.Expression, session: Session) -> exp.Expression:
    """DuckDB's bit operators `a << b` and `a & b` and its `bit_count` are ClickHouse's
    functions bitShiftLeft, bitAnd and bitCount; sqlglot would keep the operators, which
    ClickHouse does not parse (queries/transitions.sql, entity_flags)."""
    functions = {exp.BitwiseLeftShift: "bitShiftLeft", exp.BitwiseAnd: "bitAnd"}
    # innermost first (reversed depth-first order): a replaced node's operands are
    # replaced already
    for node in reversed(list(tree.find_all(exp.BitwiseLeftShift, exp.BitwiseAnd,
                                            exp.Anonymous, bfs=False))):
        if isinstance(node, exp.Anonymous):
            if node.name.lower() == "bit_count":
                node.replace(exp.Anonymous(this="bitCount", expressions=node.expressions))
            continue
        node.replace(exp.Anonymous(this=functions[type(node)],
                                   expressions=[node.this, node.expression]))
    return tree


Rewrite = Callable[[exp.Expression, Session], exp.Expression]
REWRITES: tuple[Rewrite, ...] = (
    session_views_as_ctes,  # first: a view reads the variables as they are when queried
    substitute_variables,
    fold_unset_variables,
    nullable_lag,
    projection_names,
    aliases_do_not_shadow,
    star_beside_join,
    map_literals,  # before named_tuples: a MAP literal is written as a struct
    map_lookups,
    named_tuples,
    timestamps_to_microseconds,
    epoch_functions,
    signed_row_number,
    flatten_one_level,
    ordered_lists,
    parallel_unnests,
    boolean_columns,
    round_half_away_from_zero,
    insert_or_ignore,
    list_functions,
    bitwise_functions,
)


def to_clickhouse(tree: exp.Expression, session: Session,
                  rewrites: Iterable[Rewrite] = REWRITES,
                  tables: Mapping[str, str] | None = None) -> str:
    """A bound DuckDB tree as ClickHouse SQL, after every rewrite. ``tables``: where each
    of the store's tables is read from instead (a table name or a subquery), for a query
    that runs on one part of a store (collectors/stores/clickhouse.py)."""
    tree = tree.copy()
    for rewrite in rewrites:
        tree = rewrite(tree, session)
    if tables:
        tree = relocate(tree, tables)
    return tree.sql(dialect="clickhouse")


def relocate(tree: exp.Expression, tables: Mapping[str, str]) -> exp.Expression:
    """``tree`` reading each table named in ``tables`` from where it says instead."""
    for node in list(tree.find_all(exp.Table)):
        if node.db or node.name not in tables:
            continue
        where = _source(tables[node.name])
        alias = exp.TableAlias(this=exp.to_identifier(node.alias or node.name))
        if isinstance(where, exp.Table):
            node.replace(exp.Table(this=where.this.copy(), alias=alias))
        else:
            node.replace(exp.Subquery(this=where.copy(), alias=alias))
    return tree


@lru_cache(maxsize=64)
def _source(text: str) -> exp.Expression:
    return sqlglot.parse_one(text, read="duckdb")


def keep_in_session(statement: Statement, tree: exp.Expression,
                    session: Session) -> list[str] | None:
    """What a session statement (SET VARIABLE, a temporary view or table; ``tree`` its bound
    form) does: it updates ``session``, and returns the ClickHouse statements that make a
    materialised table. None for a query, which the caller runs."""
    if statement.kind == "set":
        session.variables[statement.name] = substitute_variables(tree, session)
        return []
    if statement.kind == "table" and session.materialise:
        session.views.pop(statement.name, None)
        select = to_clickhouse(tree, session)
        return [f"DROP TEMPORARY TABLE IF EXISTS {statement.name}",
                f"CREATE TEMPORARY TABLE {statement.name} ENGINE = Memory AS {select}"]
    if statement.kind in ("view", "table"):
        session.views[statement.name] = tree
        return []
    return None


def translate(sql: str, params: Any = None, session: Session | None = None) -> list[str]:
    """Every statement of ``sql`` (DuckDB) as ClickHouse SQL; session statements (SET
    VARIABLE, temporary views and tables) update ``session`` and yield nothing but the
    statements that make a materialised table."""
    session = session if session is not None else Session()
    out = []
    for statement in parse(sql):
        tree = bind(statement.tree, params)
        kept = keep_in_session(statement, tree, session)
        out += kept if kept is not None else [to_clickhouse(tree, session)]
    return out
