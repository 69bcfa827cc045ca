"""Validation and typing of raw event lines, as SQL generated from the event key table.

The bulk ingest hands DuckDB a batch of raw lines (``ingest_batch(line, raw)``). One
statement classifies each line (accepted / skipped as an ordinary log line / rejected with
the first reason that applies) and types the accepted ones.

Each line is parsed once, by ``json_transform`` into a struct of JSON fragments; every check
after that works on the fragments' text (a fragment's first byte is its JSON type), which
measured several times faster than asking DuckDB about each key separately. The checks are
the rules of ``rules.py`` (generated from ``audit.event.EVENT_KEYS``, shared with the fast
path) seen through ``ExactView``.
"""

from __future__ import annotations

from collections.abc import Callable

from audit.event import EVENT_KEYS, MAX_DEPTH
from collectors import rules
from collectors.canonical import SQL_FUNCTION
from collectors.rules import KEYS, View, brackets, lit, shallow, written_as_real

ID_SEP = "\x1f"  # between the parts hashed into a derived event id
_MAX_SAFE_INT = 2**53
# What VARIANT would write differently from canonical_text: a float (a digit then '.', 'e',
# 'E'), an escape, an integer of 19 digits or more (past 64 bits VARIANT goes to double);
# and what canonical_text refuses (NaN, Infinity; a number beyond a double has a long digit
# run or an exponent).
_PYTHON_ONLY = r"[0-9][.eE]|[0-9]{19}|\\|NaN|Infinity"
_TRANSFORM = "{" + ", ".join(f'"{k}": "JSON"' for k in KEYS) + "}"
STRING = '"'  # a JSON string's text starts with a quote


def _f(key: str) -> str:
    """The key's value as minified JSON text; NULL if absent.

    json_transform reads JSON null as SQL NULL. That is right for every key but old/new,
    where null is a value: their ``<key>_json`` columns tell null from absent.
    """
    if EVENT_KEYS[key][0] == "json":
        return f"({key}_json::VARCHAR)"
    return f"(r.{key}::VARCHAR)"


def _is(key: str, first: str) -> str:
    """Whether the value's JSON text starts with ``first`` (a byte test, no parsing)."""
    return f"starts_with({_f(key)}, {lit(first)})"


class ExactView(View):
    """The exact path's view: every key parsed as a JSON fragment, whose first byte is its
    JSON type, so that each rule can say what it found."""

    def text(self, key: str) -> str:
        return _f(key)

    def present(self, key: str) -> str:
        kind, required, _ = EVENT_KEYS[key]
        if kind == "json" or required:
            return f"{_f(key)} IS NOT NULL"
        # JSON null in an optional key means "not given" (emitters write "actor": null); the
        # transform already made it NULL.
        return f"r.{key} IS NOT NULL"

    def is_string(self, key: str) -> str:
        return _is(key, STRING)

    def string(self, key: str) -> str:
        """Without the quotes; only strings with escapes need a real parse."""
        f = _f(key)
        return f"CASE WHEN contains({f}, '\\') THEN r.{key}->>'$' ELSE {f}[2:-2] END"

    def too_deep(self) -> str:
        return "too_deep"

    def keys(self) -> str:
        return "CASE WHEN r IS NOT NULL THEN json_keys(raw) END"

    def parse_checks(self) -> list[rules.Check]:
        return [
            rules.Check("r IS NULL AND json_valid(raw)", lit("not a JSON object")),
            rules.Check("r IS NULL", lit("invalid JSON")),
        ]

    def type_name(self, key: str) -> str:
        f = _f(key)
        return (
            f"CASE left({f}, 1) WHEN '\"' THEN 'string' WHEN '{{' THEN 'object' "
            f"WHEN '[' THEN 'array' WHEN 'n' THEN 'null' WHEN 't' THEN 'boolean' "
            f"WHEN 'f' THEN 'boolean' "
            f"ELSE CASE WHEN regexp_full_match({f}, '-?[0-9]+') THEN 'integer' "
            "ELSE 'number' END END"
        )

    def missing(self, key: str) -> str:
        # A required key given as null: say so rather than "missing" (checked on few rows).
        q = f'"{key}"'
        return (
            f"CASE WHEN json_exists(raw, {lit('$.' + key)}) "
            f"THEN {lit(f'{q} must be a string, got null')} "
            f"ELSE {lit(f'missing required key {q}')} END"
        )


EXACT = ExactView()


def _optional_text(key: str) -> str:
    return f"CASE WHEN {EXACT.present(key)} THEN {EXACT.string(key)} END"


def json_value(key: str) -> str:
    """An old/new value kept JSON-typed (a cast from VARCHAR to JSON parses it again).

    json_transform reads JSON null as SQL NULL; here null is a value, told from absent by a
    second look at the line, only where the parse gave NULL."""
    return (
        f"CASE WHEN r.{key} IS NOT NULL THEN r.{key} "
        f"WHEN r IS NOT NULL AND json_exists(raw, {lit('$.' + key)}) THEN 'null'::JSON END"
    )


def json_columns() -> list[str]:
    """``<key>_json`` for old and new (``json_value``): both paths compute them once, before
    the rules and ``canonical_value`` read them."""
    return [f"{json_value(k)} AS {k}_json" for k in KEYS if EVENT_KEYS[k][0] == "json"]


def canonical_value(key: str) -> str:
    """The value as canonical JSON: containers with sorted keys, integral numbers written as
    floats as integers (1.0 and 1 are one JSON value). yyjson re-serialises strings, so
    escapes like \u00e9 are canonical already; only a number with a dot or an exponent can
    need SQL's help.

    Containers: DuckDB's VARIANT keeps object keys sorted (as the Parquet variant encoding
    requires), so a round trip through it sorts them at every depth, in SQL. It writes
    floats (1e3 as 1000.0), escaped characters and integers past 64 bits its own way, and
    overflows its stack on deep nesting, so a container with a float, a backslash, a long
    digit run or many brackets goes to Python instead (collectors/canonical.py).
    Measured: a container in 6 % of 1M lines, ~0.2 s in Python against ~0.05 s; 300k lines
    of distinct lists, 2.2 s against 1.6 s. Only lines repeating a few values throughout
    were faster in Python, whose cache then answers (1.0-1.1 s against 1.15-1.55 s).
    tests/collectors/test_canonical.py holds the two routes to the same text.

    NULL for a value the store does not keep: NaN, Infinity or a number beyond a double,
    which DuckDB's reader takes and JSON (RFC 8259) does not. Readers would choke on them
    (Python writes them back as JSON no browser reads). In a container they send it to
    Python, which refuses them."""
    f = _f(key)
    as_double = f"TRY_CAST({f} AS DOUBLE)"
    python_only = f"regexp_matches({f}, {lit(_PYTHON_ONLY)}) OR NOT {shallow(f)}"
    real = written_as_real(f)
    # The parser writes NaN, Infinity, -Infinity as such, and keeps a number too large for a
    # double as written: 1e400, or 400 digits.
    not_finite = (
        f"starts_with({f}, 'N') OR starts_with({f}, 'I') OR starts_with({f}, '-I') "
        f"OR (({real} OR length({f}) > 309) AND NOT isfinite({as_double}))"
    )
    return (
        f"CASE WHEN {_is(key, STRING)} THEN {key}_json "  # most values: tested first
        f"WHEN starts_with({f}, '{{') OR starts_with({f}, '[') "
        f"THEN CASE WHEN {python_only} THEN {SQL_FUNCTION}({f})::JSON "
        f"ELSE {key}_json::VARIANT::JSON END "
        f"WHEN {not_finite} THEN NULL "
        f"WHEN {real} AND {as_double} = trunc({as_double}) AND abs({as_double}) < {_MAX_SAFE_INT} "
        f"THEN TRY_CAST({as_double} AS BIGINT)::VARCHAR::JSON ELSE {key}_json END"
    )


def stage_sql() -> str:
    """``ingest_stage``: one row per non-blank line with reason, skipped, and typed columns.

    A derived event id hashes the line's identity (the JSON text of every contract key but
    ``event`` and ``event_id``, in fixed key order) with its canonical old and new.
    """
    skipped = f"coalesce(NOT too_deep AND {rules.skipped(EXACT)}, false)"
    return f"""
CREATE OR REPLACE TEMP TABLE ingest_stage AS
WITH parsed AS (
    SELECT line, raw, line IN (SELECT line FROM ingest_too_deep) AS too_deep,
           -- json_valid first, not TRY: see fast_path.insert_sql.
           CASE WHEN (starts_with(raw, '{{') OR ltrim(raw, E' \\t\\r\\n')[1] = '{{')
                 AND json_valid(raw) THEN json_transform(raw, {lit(_TRANSFORM)}) END AS r
    FROM ingest_batch
    -- Blank lines are not events. Trimming every line is slow: test the first byte first.
    WHERE starts_with(raw, '{{') OR (raw <> '' AND trim(raw, E' \\t\\r\\n') <> '')
), with_values AS (
    SELECT *, {", ".join(json_columns() + rules.typed_values(EXACT))}, {EXACT.keys()} AS keys
    FROM parsed
), classified AS (
    SELECT *, {skipped} AS skipped,
           {canonical_value("old")} AS old, {canonical_value("new")} AS new
    FROM with_values
), typed AS (
    SELECT *, CASE WHEN skipped THEN NULL ELSE {rules.reason(EXACT)} END AS reason,
           {_optional_text("event_id")} AS event_id_given
    FROM classified
)
SELECT line, reason, skipped, ts_value AS ts, {EXACT.string("entity")} AS entity,
       {_optional_text("entity_type")} AS entity_type, {EXACT.string("field")} AS field,
       {rules.change(EXACT)} AS change,
       old, new,
       {EXACT.string("writer")} AS writer, {_optional_text("actor")} AS actor,
       {_optional_text("write_id")} AS write_id,
       base_version_value AS base_version, version_value AS version,
       source_ts_value AS source_ts, priority_value AS priority,
       lower({_optional_text("trace_id")}) AS trace_id,
       lower({_optional_text("span_id")}) AS span_id,
       CASE WHEN {_is("attrs", "{")} THEN r.attrs END AS attrs,
       coalesce(event_id_given, {derived_id(_f)}) AS event_id
FROM typed
"""


def derived_id(text: Callable[[str], str]) -> str:
    """The id of an event given without one: a hash of each key's JSON text (``text(key)``,
    NULL when absent) in key order, then the canonical old and new. Both ingest paths use
    it, so a line gets one id whichever path stores it."""
    sep = " || " + lit(ID_SEP) + " || "
    keys = [k for k in KEYS if k not in ("event", "event_id", "old", "new")]
    parts = [f"coalesce({text(k)}, '')" for k in keys]
    parts += ["coalesce(old::VARCHAR, '')", "coalesce(new::VARCHAR, '')"]
    return f"'h-' || md5({sep.join(parts)})"


def maybe_deep_sql() -> str:
    """Lines with more opening brackets than MAX_DEPTH: the only ones worth measuring.

    Depth counts for what the store keeps (old, new, attrs) and for a line that is not an
    object; keys outside the contract are dropped, however deep.
    """
    return (
        "SELECT line, raw, TRY(json_type(raw)) = 'OBJECT' AS is_object, "
        "TRY(json_extract(raw, ['$.old', '$.new', '$.attrs']))::VARCHAR[] AS kept "
        "FROM ingest_batch "
        f"WHERE {brackets('raw')} > {MAX_DEPTH}"
    )
