"""The fast path of the bulk ingest: store the lines that are plainly well-formed, in one go.

Most lines of a real log are well-formed events. For them, the exact validation
(``validate.py``: every key's JSON text, a reason for each failure, a staged table, then a
copy into the store) is work thrown away. This one statement parses each line once, into
the types the store wants, decides with cheap tests whether the line is *certainly*
acceptable, and inserts those lines straight from the parse. Every other line (rejects,
ordinary log lines, anything ambiguous, lines whose event_id is stored already) is left for
the exact path, which then sees only the remainder. Both paths apply the rules of
``rules.py``, each through its own view of the line, and write the same row for the same
line; tests hold them to it (tests/collectors/test_fast_path.py).

"Certainly" is the design rule: ``FastView`` may send a good line to the exact path, never
let a bad one through. Strings come out of the parse unquoted, so a number in a string key
comes out as text too ("5"); a string that reads like a number, boolean or container is
therefore left for the exact path, which sees the JSON types.
"""

from __future__ import annotations

from audit.event import EVENT_KEYS, TRANSITION
from collectors import rules
from collectors.rules import KEYS, View, lit, shallow
from collectors.validate import canonical_value, derived_id, json_columns

# The parse: strings straight to VARCHAR, what needs its JSON type kept as JSON.
_AS = {"integer": "JSON", "integer32": "JSON", "json": "JSON", "object": "JSON"}
_TRANSFORM = (
    "{" + ", ".join(f'"{k}": "{_AS.get(v[0], "VARCHAR")}"' for k, v in EVENT_KEYS.items()) + "}"
)

# Settings for the insert, restored after it:
# - Filter pushdown would copy the parse into every test of the WHERE clause, so DuckDB
#   would parse each line dozens of times (measured: 25 s instead of 0.7 s for a million
#   lines); with it off, the parse is computed once and the rules read it.
# - Rows need not land in line order: ``seq`` carries the order, and unordered inserts
#   run in parallel (measured ~15 % faster).
# - Plain FSST is not tried when compressing string columns: DuckDB's dictionary+FSST wins
#   on event columns anyway (the store came out the same size), and analysing both cost
#   ~10 % of the write.
SETTINGS = {
    "disabled_optimizers": "filter_pushdown",
    "preserve_insertion_order": False,
    "disabled_compression_methods": "fsst",
}


def _plain(v: str) -> str:
    """The text cannot be how the parse renders a JSON number, boolean or container.

    Numbers come out as digits, '-', '.', 'e', '+' (and NaN, Infinity, which DuckDB's JSON
    reader accepts). Most strings start with a letter none of those start with, and are
    done after one test; ids often start with a digit, so only those pay for a pattern.
    ``unicode`` decodes the first character only; ``ascii`` checks the whole string's
    UTF-8 first (~900 instructions a line over seven keys).
    """
    a = f"unicode({v})"
    return (
        f"CASE WHEN {a} > 57 AND {a} NOT IN (73, 78, 91, 102, 116, 123) THEN true "  # I N [ f t {
        f"WHEN {a} BETWEEN 48 AND 57 OR {a} = 45 "
        f"THEN NOT regexp_full_match({v}, '-?[0-9][0-9.eE+-]*') AND {v} <> '-Infinity' "
        f"WHEN {a} = 91 OR {a} = 123 THEN false "
        f"ELSE NOT ({v} = 'true' OR {v} = 'false' OR {v} = 'NaN' OR {v} = 'Infinity') END"
    )


class FastView(View):
    """The fast path's view: strings parsed to text, other kinds to JSON fragments."""

    def text(self, key: str) -> str:
        kind = EVENT_KEYS[key][0]
        if kind == "json":
            return f"{key}_json::VARCHAR"
        return f"r.{key}::VARCHAR" if kind in _AS else f"to_json(r.{key})::VARCHAR"

    def present(self, key: str) -> str:
        return f"{key}_json IS NOT NULL" if EVENT_KEYS[key][0] == "json" else f"r.{key} IS NOT NULL"

    def is_string(self, key: str) -> str:
        kind = EVENT_KEYS[key][0]
        if key == "event":
            # The one "event" the fast path takes; ordinary log lines are the exact path's.
            return f"r.event = {lit(TRANSITION)}"
        if kind == "string":
            return _plain(f"r.{key}")
        # A number, boolean or container renders as digits, '-', '.', 'e', '+', true, false,
        # NaN, Infinity, '[…]' or '{…}'. None of those is an RFC 3339 timestamp or a change
        # kind, so the kind's own rule decides; a hex string can be all digits, as a number.
        if kind == "hex":
            return f"NOT regexp_full_match(r.{key}, '[0-9]+')"
        return "true"

    def string(self, key: str) -> str:
        return f"r.{key}"

    def keys(self) -> str:
        """NULL for a line too short to hold a key twice, which is most lines: listing the
        keys of each line and looking for one twice costs ~0.7 s per million (CPU)."""
        short = f"strlen(raw) <= {_shortest_with_a_key_twice()}"
        return f"CASE WHEN {short} THEN NULL ELSE json_keys(raw) END"

    def too_deep(self) -> str:
        kept = ["old_json::VARCHAR", "new_json::VARCHAR", "r.attrs::VARCHAR"]
        return "NOT (" + " AND ".join(f"coalesce({shallow(t)}, true)" for t in kept) + ")"


FAST = FastView()


def _member_length(key: str) -> str:
    """SQL: a lower bound of how long the key's first member ('"key":value' and the ',' or
    '}' after it) is written in the line, 0 when absent.

    The parse gives a string's content, which is written at least as long, plus quotes (an
    escape is never shorter than what it stands for); integers are written as the parse
    gives them. Old, new and attrs come as the parser's minified rewrite, where a real may
    come out longer than written (1e10 as 10000000000.0): a string or a container without
    a real counts there, a scalar number as nothing (telling a real from an integer cost
    as much as the rest of the bound). Bounds only need to hold for a line every other
    rule accepts:
    "entity": 5 comes out as the text "5", but such a line is not taken anyway.
    Arithmetic on NULL is NULL, hence coalesce for an absent key.
    """
    kind = EVENT_KEYS[key][0]
    name = len(key) + 4  # quotes, colon, and the ',' or '}' after the value
    if kind not in _AS:
        return f"coalesce(strlen(r.{key}) + {name + 2}, 0)"
    if kind in rules.INTEGERS:
        return f"coalesce(strlen(r.{key}::VARCHAR) + {name}, 0)"  # only integers are taken
    f = f"{key}_json::VARCHAR" if kind == "json" else f"r.{key}::VARCHAR"
    # A container counts in full unless it may hold a real (most hold strings and integers:
    # sent to the slow test, a list of statuses cost more than this pattern).
    return (
        f"CASE WHEN {f} IS NULL THEN 0 "
        f"WHEN starts_with({f}, '\"') THEN strlen({f}) + {name} "
        f"WHEN (starts_with({f}, '[') OR starts_with({f}, '{{')) "
        f"AND NOT regexp_matches({f}, '[0-9][.eE]') THEN strlen({f}) + {name} "
        f"ELSE {name} END"
    )


def _shortest_with_a_key_twice() -> str:
    """SQL: how long (in bytes, its newline included) a line would at least be, with the
    values the parse found, if it gave a contract key twice.

    Without one, the line is at least '{', then each member it gives and a ',' or '}' after
    it (a key whose value is JSON null counts as absent: the bound only gets lower), then
    the newline. A key given again adds at least ',"ts":0', 7 bytes; so a line no longer
    than the bound plus 6 gives none twice.
    """
    members = " + ".join(f"{_member_length(k)}" for k in KEYS)
    return f"(1 + {members} + 1 + 6)"


def insert_sql(*, strict: bool = False) -> str:
    """INSERT the certainly-acceptable lines of ``ingest_batch``; parameters: seq base, source.

    ``seq`` is ``base + line``, as on the exact path, so the two interleave in line order.
    Event ids are not looked up here: the caller deletes what turns out to be duplicate.

    Lines cut short (a writer killed mid-line) do not end in '}' and are left to the exact
    path without a parse. Of the rest, the strict parse fails the whole statement on a
    malformed line, which aborts the transaction; the caller then does the batch again
    with the tolerant parse (``ingest._in_transaction``), which parses only what
    ``json_valid`` passes. ``TRY`` would do the same but, on an error in a vector of 2,048
    lines, evaluates that vector again line by line: with 1 % bad lines that is every
    vector, and 1M lines took 4.5 s instead of 0.35 s to parse. The strict parse saves the
    validation (~0.08 s per million lines) on clean batches.
    """
    parse = f"json_transform(raw, {lit(_TRANSFORM)})"
    if not strict:
        parse = f"CASE WHEN json_valid(raw) THEN {parse} END"
    return f"""
INSERT INTO events
SELECT ? + line, event_id, ts_value, r.entity, r.entity_type, r.field,
       {rules.change(FAST)}, old, new, r.writer, r.actor, r.write_id,
       base_version_value, version_value, source_ts_value, priority_value,
       lower(r.trace_id), lower(r.span_id), r.attrs, ?, line
FROM (
    SELECT *,
           coalesce(r.event_id, {derived_id(FAST.text)}) AS event_id,
           -- A column, then a filter on it: as the WHERE condition itself, DuckDB took
           -- twice as long over the same expression.
           {rules.accepted(FAST)} AS accepted
    FROM (
        -- keys reads old_json and new_json: a level up from where they are computed, as in
        -- the same select list DuckDB would compute them again for it.
        SELECT *, {canonical_value("old")} AS old, {canonical_value("new")} AS new,
               {FAST.keys()} AS keys
        FROM (
            SELECT *, {", ".join(json_columns() + rules.typed_values(FAST))}
            FROM (
                SELECT line, raw, {parse} AS r
                FROM ingest_batch
                WHERE starts_with(raw, '{{')
                  AND (ends_with(raw, E'}}\n') OR ends_with(raw, E'}}\r\n'))
            )
            WHERE r IS NOT NULL
        )
    )
)
WHERE accepted
"""
