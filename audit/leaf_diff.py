"""The usual tracked write, one field changed, read off the JSON texts before and after.

The tracker holds the document's JSON text from before the write (audit/track.py
`_Tracker`) and writes the text after it to see whether anything changed. When one scalar
changed in place, the two texts differ in that scalar's text alone: walking the document
after the write, child by child, to the first child whose text is not also in the text
before, at the same place, finds it; the old value is parsed from the few bytes that
stand there in the text before. That skips parsing the whole state before and diffing it,
about a third of what a tracked write cost (bench/instrument.py).

Exact, not a guess: the change is returned only when the text before is the text after
with that one scalar's text replaced, so the state before was the state after with that one
value replaced. Anything else (a second change, an added key, a move, a type or key text
that changes, a value that is not plain JSON) returns None and the tracker runs the full
diff (audit/diff.py). Booleans need no care here: ``true`` and ``1`` are different texts.
"""

from __future__ import annotations

from typing import Any

import orjson

from audit.diff import SCALARS, Change, Rules, element_step, key_text, keyed_elements, text


def leaf_change(
    before_json: bytes, after_json: bytes, after: dict[str, Any], rules: Rules
) -> list[Change] | None:
    """The change of the one scalar that differs between the two texts of ``after``'s
    document (``after_json`` is ``orjson.dumps(after)``), as `audit.diff.diff` with
    ``rules`` reports it: ``[(path, "changed", old, new)]``, ``[]`` where that path is
    excluded or is the stamp. None where the texts differ in any other way."""
    if type(after) is not dict:
        return None
    dumps = orjson.dumps
    cx = rules.walk("", False)
    hidden = False  # the path is excluded: verified as usual, then reported as no change
    path: Any = None
    node: Any = after
    child_json = b""
    pos = 0  # where node's text starts, in both texts
    element_key = None  # node is an element of a keyed list: its key field, which must stay
    while True:
        t = type(node)
        if t is dict:
            pos += 1  # the opening bracket
            # The first child whose text is not also the text before, at the same place:
            # the change is in it, if the text after that child is the end of the text
            # before. Keys' texts and separators before it are checked once, at the end.
            for step, child in node.items():
                pos += len(dumps(step)) + 1  # the key's text, then ":"
                child_json = dumps(child)
                if not before_json.startswith(child_json, pos):
                    break
                pos += len(child_json) + 1
            else:
                return None  # every child's text is as before: something around them is not
            if not before_json.endswith(after_json[pos + len(child_json):]):
                return None  # and a change after it: more than one
            if step == element_key:
                return None  # a keyed element's key changed: a remove and an add
            if path is None and rules.skip is not None and step in rules.skip:
                return None  # the stamp: not a change, and the stamp does not say so
            element_key = None
        elif t is list or t is tuple:
            # The dict branch's search again, without keys. Inline on purpose: this runs in
            # every tracked write, and as one shared function it cost 0.2-0.6 us a write
            # (bench/instrument.py, 13.2-13.5 against 12.9-13.3 us).
            pos += 1
            for step, child in enumerate(node):  # noqa: B007 - read where it stops
                child_json = dumps(child)
                if not before_json.startswith(child_json, pos):
                    break
                pos += len(child_json) + 1
            else:
                return None
            if not before_json.endswith(after_json[pos + len(child_json):]):
                return None
            key = cx.list_key(path)
            if key is not None and keyed_elements(node, key) is not None:
                step = element_step(key_text(child[key]))  # type: ignore[arg-type]
                element_key = key
            else:
                element_key = None
        else:
            break
        path = (path, step)
        if not hidden and cx.excluded is not None and cx.hit(path):
            hidden = True
        node = child
    if type(node) not in SCALARS:
        return None  # a value that is not plain JSON: the full diff knows what to make of it
    end = pos + len(child_json)
    tail = len(after_json) - end
    before_end = len(before_json) - tail
    if before_end <= pos or not (
        after_json.startswith(child_json, pos) and before_json.startswith(after_json[:pos])
    ):
        return None  # the text of a key, or what follows a child, was not as before
    try:
        old = orjson.loads(before_json[pos:before_end])
    except orjson.JSONDecodeError:
        return None  # more than one value stood there
    if type(old) is not type(node) or old == node:
        return None  # a number written otherwise (1 and 1.0, 0.0 and -0.0): the diff decides
    return [] if hidden else [(text(path), "changed", old, node)]
