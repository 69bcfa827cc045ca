"""Canonical JSON text for event values, so that equal values are equal text.

Detectors compare ``old``/``new`` as text in SQL; JSON itself does not care about object key
order or ``1.0`` versus ``1``. The bulk ingest canonicalises scalars and most containers
in SQL (``validate.canonical_value``); containers with floats, escapes, very long integers
or deep nesting come here, called from inside its SQL as a DuckDB function over Arrow
batches.
"""

from __future__ import annotations

import re

import duckdb
import orjson
import pyarrow as pa
from duckdb.sqltypes import VARCHAR

from audit import exact_json
from audit.redact import normalise
from collectors.arrow_arrays import string_array

SQL_FUNCTION = "audit_canonical_json"
PROBLEM_FUNCTION = "audit_json_problem"

# A float in JSON text is a digit followed by '.', 'e' or 'E'. Text without one (most
# lists of objects: ids, statuses, counts) skips the walk that normalises floats, which is
# most of the cost. Strings such as "v1.2" match too: that only costs the walk.
_MAYBE_FLOAT = re.compile(r"[0-9][.eE]")


def canonical_text(json_text: str | None) -> str | None:
    """Minified JSON with sorted keys and normalised numbers; None stays None.

    Raises ``orjson.JSONDecodeError`` for what DuckDB's reader takes and JSON does not:
    NaN, Infinity, a number beyond a 64-bit float (``json_problem`` says which).
    Integers beyond 64 bits stay exact (`audit.exact_json`).
    """
    if json_text is None:
        return None
    value = exact_json.loads(json_text)
    if _MAYBE_FLOAT.search(json_text):
        value = normalise(value)
    return exact_json.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def json_problem(json_text: str | None) -> str | None:
    """Why a value DuckDB's JSON reader took is not one the store keeps, or None.

    Only for the few values a cheap test in SQL has flagged: it parses the text again.
    """
    if json_text is None:
        return None
    try:
        exact_json.strict_loads(json_text)
    except exact_json.NotJson as exc:
        return str(exc)
    except RecursionError:
        return "is nested too deep"
    except ValueError as exc:
        return f"is not JSON: {exc}"
    return None


# Values repeat (a status list flips between a few states), and parsing and re-serialising
# is most of the cost, so canonical forms of short values are remembered, up to a bound.
_SEEN: dict[str, str | None] = {}
_SEEN_MAX = 16_384
_SEEN_LONGEST = 512


def canonical_column(texts: pa.Array) -> pa.Array:
    """``canonical_text`` over a column. A value Python cannot take comes back NULL, which
    keeps its line off the fast path; the exact path rejects it with the reason. Nested past
    the parsers' limits, orjson refuses to write it (a TypeError, from 255 levels) or to read
    it (a ValueError, from 1024), and the json module runs out of stack (RecursionError):
    raised here, any of them would abort the whole batch."""
    out = []
    for text in texts.to_pylist():
        if text in _SEEN:
            out.append(_SEEN[text])
            continue
        try:
            value = canonical_text(text)
        except (ValueError, orjson.JSONEncodeError, RecursionError):
            value = None
        if text is not None and len(text) <= _SEEN_LONGEST and len(_SEEN) < _SEEN_MAX:
            _SEEN[text] = value
        out.append(value)
    return string_array(out)


def problem_column(texts: pa.Array) -> pa.Array:
    """``json_problem`` over a column."""
    return string_array([json_problem(text) for text in texts.to_pylist()])


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Make ``audit_canonical_json(text)`` and ``audit_json_problem(text)`` callable from this
    connection's SQL."""
    for name, function in ((SQL_FUNCTION, canonical_column), (PROBLEM_FUNCTION, problem_column)):
        try:
            con.create_function(
                name,
                function,
                [VARCHAR],
                VARCHAR,
                type="arrow",
                null_handling="special",  # NULL for what it cannot take, or for no problem
                side_effects=False,
            )
        except duckdb.NotImplementedException as exc:
            if "already created" not in str(exc):
                raise


def json_depth(text: str) -> int:
    """Nesting depth of a JSON text, counting brackets outside strings (no parsing)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "}]":
            depth -= 1
    return deepest
