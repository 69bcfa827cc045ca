"""Canonical JSON text for event values, so that equal values are equal text.

Detectors compare ``old``/``new`` as text in SQL; JSON itself does not care about object key
order or ``1.0`` versus ``1``. Scalars are canonicalised in SQL during the bulk ingest; only
containers come here, because sorting keys at every depth is easier in Python.
"""

from __future__ import annotations

import re

import orjson

from audit.redact import normalise

# A float in JSON text is a digit followed by '.', 'e' or 'E'. Text without one (most
# lists of objects: ids, statuses, counts) skips the walk that normalises floats, which is
# most of the cost. Strings such as "v1.2" match too: that only costs the walk.
_MAYBE_FLOAT = re.compile(r"[0-9][.eE]")


def canonical_text(json_text: str | None) -> str | None:
    """Minified JSON with sorted keys and normalised numbers; None stays None."""
    if json_text is None:
        return None
    value = orjson.loads(json_text)
    if _MAYBE_FLOAT.search(json_text):
        value = normalise(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


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
