"""The acceptance rules of an event line, said once for both ingest paths.

A line is stored when no rule fails. The exact path (``validate.py``) names the first rule
that fails; the fast path (``fast_path.py``) stores the lines for which it can tell that
none fails. The paths parse a line differently (the fast one straight into the store's
types, the exact one into JSON fragments), so each brings a ``View``: how its SQL reaches a
key's value. The rules are one list, generated per key kind from ``audit.event.EVENT_KEYS``:
a rule added or changed here is added or changed on both paths.

A view may be unsure. The fast path's parse renders the string "5" and the number 5 alike;
where its view cannot tell, it answers so that the rule fails and the line goes to the exact
path, which decides. A view may send a good line the slow way, never let a bad one through.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.event import (
    CHANGE_KINDS,
    EVENT_KEYS,
    HEX_PATTERN,
    MAX_DEPTH,
    RFC3339_PATTERN,
    TIMESTAMP_RANGE,
    TRANSITION,
)
from collectors.canonical import PROBLEM_FUNCTION

KEYS = list(EVENT_KEYS)
# Integer kinds: the store's column type, and how a message names it.
INTEGERS = {"integer": ("BIGINT", "64-bit"), "integer32": ("INTEGER", "32-bit")}
TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"
# Text that may hide what JSON does not allow (NaN, Infinity, a number beyond a double: an
# exponent or 310 digits); only values that match are parsed again, in Python.
_MAYBE_NOT_JSON = r"NaN|Infinity|[0-9][eE]|[0-9]{310}"


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Check:
    """One rule: ``fails`` is SQL that is true when the line breaks it, ``reason`` a SQL text
    expression that says so (evaluated by the exact path only)."""

    fails: str
    reason: str


class View:
    """How a path's SQL reaches the values of a line parsed into the struct ``r``.

    Typed values are computed once per line by ``typed_values`` as ``<key>_value`` columns
    (timestamps and integers), and old/new as ``old_json``/``new_json`` (JSON fragments that
    tell JSON null from absent) before the rules look at them.
    """

    def text(self, key: str) -> str:
        """The value's JSON text; NULL when absent."""
        raise NotImplementedError

    def present(self, key: str) -> str:
        """The key is given (JSON null counts as absent, but for old/new, where it is a value)."""
        raise NotImplementedError

    def is_string(self, key: str) -> str:
        """The value is a JSON string (a view that cannot tell says false)."""
        raise NotImplementedError

    def string(self, key: str) -> str:
        """The string's content, without quotes or escapes."""
        raise NotImplementedError

    def too_deep(self) -> str:
        """Something the store keeps (old, new, attrs) or the whole line nests too deep."""
        raise NotImplementedError

    def parse_checks(self) -> list[Check]:
        """Rules about the parse itself, for a view that sees lines that did not parse."""
        return []

    def keys(self) -> str:
        """The line's top-level keys (``json_keys(raw)``), for ``duplicate_key``; a view may
        give NULL for a line it can tell has no key twice."""
        raise NotImplementedError

    # Reasons: only the exact path reports them; a view that never does leaves them NULL.

    def type_name(self, key: str) -> str:
        """The value's JSON type as a user names it."""
        return "NULL"

    def missing(self, key: str) -> str:
        """Why a required key is not there (absent, or given as null)."""
        return "NULL"


def timestamp_value(text: str) -> str:
    """The text cast to TIMESTAMPTZ, NULL if it is not one.

    The cast refuses RFC 3339's lower-case 't' and 'z'; only a text the plain cast refused
    is upper-cased (a new string per row: upper-casing every one cost ~500 instructions a
    line)."""
    return f"coalesce(TRY_CAST({text} AS TIMESTAMPTZ), TRY_CAST(upper({text}) AS TIMESTAMPTZ))"


def integer_value(text: str, kind: str) -> str:
    """The integer, NULL if not a JSON integer that fits the store's column.

    The text is the parser's own rendering of the value, so a number is digits with an
    optional '-', plus '.', 'e' or 'E' if it is not an integer; a string keeps its quotes
    and fails the cast, as do true, false, NaN and containers. The cast alone would take
    5.0 and 1e3, hence ``written_as_real``."""
    sql_type = INTEGERS[kind][0]
    return f"CASE WHEN NOT {written_as_real(text)} THEN TRY_CAST({text} AS {sql_type}) END"


def written_as_real(text: str) -> str:
    """The parser's rendering of a number has a '.', 'e' or 'E': not an integer as written.
    Three byte tests, cheaper than a pattern (~500 instructions a line for two keys)."""
    return f"(contains({text}, '.') OR contains({text}, 'e') OR contains({text}, 'E'))"


def typed_values(view: View) -> list[str]:
    """``<key>_value`` columns for the keys with a typed column; computed once, used by the
    rules and by the insert."""
    out = []
    for key, (kind, _, _) in EVENT_KEYS.items():
        if kind == "timestamp":
            # The cast is the costliest single check (~0.2 s per million): done once. An
            # absent key is NULL, and so is its cast.
            out.append(f"{timestamp_value(view.string(key))} AS {key}_value")
        elif kind in INTEGERS:
            out.append(f"{integer_value(view.text(key), kind)} AS {key}_value")
    return out


def _must_be_string(view: View, key: str) -> Check:
    why = lit(f'"{key}" must be a string, got ')
    return Check(f"NOT {view.is_string(key)}", f"{why} || {view.type_name(key)}")


def key_checks(view: View, key: str) -> list[Check]:
    """The rules one key's value must meet when it is given, first failing first.

    Reasons are generic (the raw line is kept beside them), so that ``audit stats`` counts
    a handful of reasons rather than one per bad value."""
    kind = EVENT_KEYS[key][0]
    q = f'"{key}"'
    if kind in INTEGERS:
        return [Check(f"{key}_value IS NULL", lit(f"{q} must be a {INTEGERS[kind][1]} integer"))]
    if kind == "object":
        text = view.text(key)
        return [
            Check(
                f"NOT starts_with({text}, '{{')",
                f"{lit(f'{q} must be an object, got ')} || {view.type_name(key)}",
            ),
            # A CASE, not AND: DuckDB computes both sides of an AND in a select list, and
            # the Python function for every line cost ~0.15 s per million.
            Check(
                f"CASE WHEN regexp_matches({text}, {lit(_MAYBE_NOT_JSON)}) "
                f"THEN {PROBLEM_FUNCTION}({text}) IS NOT NULL ELSE false END",
                f"{lit(q + ' ')} || {PROBLEM_FUNCTION}({text})",
            ),
        ]
    if kind == "json":
        return []  # any JSON value: what the store cannot keep, canonical_value refuses
    checks = [_must_be_string(view, key)]
    s = view.string(key)
    if kind == "timestamp":
        bad = f"{key}_value IS NULL OR NOT regexp_full_match({s}, {lit(RFC3339_PATTERN)})"
        checks.append(Check(bad, lit(f"{q} is not an RFC 3339 timestamp with offset")))
        first, last = (f"TIMESTAMPTZ {lit(t)}" for t in TIMESTAMP_RANGE)
        checks.append(
            Check(
                f"{key}_value NOT BETWEEN {first} AND {last}",
                lit(f"{q} is outside the years 0001-9999"),
            )
        )
    elif kind == "hex":
        bad = f"NOT regexp_full_match({s}, {lit(HEX_PATTERN)})"
        checks.append(Check(bad, lit(f"{q} must be a hex string")))
    elif kind == "change":
        allowed = ", ".join(CHANGE_KINDS)
        bad = f"{s} NOT IN ({', '.join(lit(k) for k in CHANGE_KINDS)})"
        checks.append(Check(bad, lit(f"{q} must be one of {allowed}")))
    return checks


def change(view: View) -> str:
    """The change kind, ``changed`` when not given."""
    given = f"CASE WHEN {view.present('change')} THEN {view.string('change')} END"
    return f"coalesce({given}, 'changed')"


def skipped(view: View) -> str:
    """An ordinary log line: its "event" is a string other than field.transition."""
    other = f"{view.string('event')} <> {lit(TRANSITION)}"
    return f"({view.present('event')} AND {view.is_string('event')} AND {other})"


_CONTRACT_KEYS = "[" + ", ".join(lit(k) for k in KEYS) + "]"


def duplicate_key(keys: str = "keys") -> str:
    """SQL: the first contract key that a line's key list (``View.keys``, computed once
    into a column: repeated inside the lambda it would be computed per element) gives a
    second time, in the order written; NULL if none. The parser would take the first
    value silently: {"entity":"a","entity":"b"} would be stored as a."""
    again = f"list_contains({_CONTRACT_KEYS}, k) AND list_position({keys}, k) < i"
    # Most lines have no list (a view that knows); the lambda would still cost per row.
    return f"CASE WHEN {keys} IS NOT NULL THEN list_filter({keys}, lambda k, i: {again})[1] END"


def line_checks(view: View) -> list[Check]:
    """Every rule of a parsed line, in the order the exact path reports them."""
    dup = duplicate_key()
    checks = [
        Check(view.too_deep(), lit(TOO_DEEP)),
        *view.parse_checks(),
        Check(f"{dup} IS NOT NULL", f"'duplicate key \"' || {dup} || '\"'"),
    ]
    for key in KEYS:
        required = EVENT_KEYS[key][1]
        if required:
            checks.append(Check(f"NOT {view.present(key)}", view.missing(key)))
        for check in key_checks(view, key):
            fails = check.fails if required else f"{view.present(key)} AND ({check.fails})"
            checks.append(Check(fails, check.reason))
    kind = change(view)
    checks += [
        Check(f"{kind} = 'added' AND new_json IS NULL", lit('change "added" needs "new"')),
        Check(f"{kind} = 'removed' AND old_json IS NULL", lit('change "removed" needs "old"')),
        # "changed" without "old" is a blind write: the writer did not read the value.
        Check(f"{kind} = 'changed' AND new_json IS NULL", lit('change "changed" needs "new"')),
    ]
    # A value canonical_value refuses (NaN, Infinity, a number beyond a double): storing
    # NULL would turn it into "absent", so the line is rejected, saying why.
    for k in ("old", "new"):
        why = f"coalesce({PROBLEM_FUNCTION}({k}_json::VARCHAR), 'could not be canonicalised')"
        checks.append(Check(f"{k}_json IS NOT NULL AND {k} IS NULL", f"'\"{k}\" ' || {why}"))
    return checks


def reason(view: View) -> str:
    """SQL: the first rule a parsed line breaks, NULL if none (the exact path)."""
    branches = [f"WHEN {c.fails} THEN {c.reason}" for c in line_checks(view)]
    return "CASE\n            " + "\n            ".join(branches) + "\n        END"


def accepted(view: View) -> str:
    """SQL: certainly no rule fails and the line is an event, not an ordinary log line (the
    fast path; unknown counts as failing)."""
    ok = " AND ".join(f"NOT ({c.fails})" for c in line_checks(view))
    return f"coalesce(NOT {skipped(view)} AND {ok}, false)"


def brackets(text: str) -> str:
    """How many '{' and '[' the text holds: an upper bound of its nesting depth. In bytes
    (``strlen``), which DuckDB knows without reading the text, unlike characters."""
    return f"strlen({text}) - strlen(replace(replace({text}, '{{', ''), '[', ''))"


def shallow(text: str) -> str:
    """Certainly nested no deeper than MAX_DEPTH: too short to, or too few brackets."""
    few = f"{brackets(text)} <= {MAX_DEPTH}"
    return f"CASE WHEN strlen({text}) <= {2 * MAX_DEPTH} THEN true ELSE {few} END"
