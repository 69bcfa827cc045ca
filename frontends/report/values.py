"""How a stored value is shown in a small space: a label that fits, a tooltip that tells all.

Values arrive as the store keeps them, canonical JSON text (None = the key was absent).
They come from users' data and can be anything: long content strings, lists of objects.
"""

from __future__ import annotations

import contextlib
from html import escape

import orjson

ABSENT = "∅"  # the field had no value (added / removed)
NOT_READ = "(not read)"  # a blind write's old value: its writer did not read it
TOOLTIP_LIMIT = 4000  # a tooltip is for reading, not for dumping megabytes into the page


def ellipsis(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "…"


def attr(value: object) -> str:
    """An HTML/SVG attribute value, quoted and escaped."""
    return '"' + escape(str(value), quote=True) + '"'


def label(value: str | None, limit: int = 18) -> str:
    """A value in at most ``limit`` characters, still recognisable.

    Strings keep their quotes (so "1" and 1 differ); containers too long to show become a
    summary such as ``[3 items]`` or ``{id, status, …}``.
    """
    if value is None:
        return ABSENT
    if len(value) <= limit:
        return value
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError:
        return ellipsis(value, limit)
    if isinstance(decoded, str):
        return '"' + ellipsis(decoded, limit - 2) + '"'
    if isinstance(decoded, list):
        if len(decoded) == 1 and limit > 8 and not isinstance(decoded[0], list):
            # one item: show a glimpse of it
            item = orjson.dumps(decoded[0], option=orjson.OPT_SORT_KEYS).decode()
            return "[" + label(item, limit - 2) + "]"
        return ellipsis(f"[{len(decoded)} item{'s' if len(decoded) != 1 else ''}]", limit)
    if isinstance(decoded, dict):
        keys = list(decoded)
        shown = "{"
        for i, key in enumerate(keys):
            part = (", " if i else "") + key
            if len(shown) + len(part) + 3 > limit:
                return shown + (", …}" if i else "…}")
            shown += part
        return shown + "}"
    return ellipsis(value, limit)


def full(value: str | None, limit: int = TOOLTIP_LIMIT) -> str:
    """The whole value for a tooltip, pretty-printed when it is a container, capped."""
    if value is None:
        return f"{ABSENT} (no value)"
    text = value
    if value[:1] in "[{":
        with contextlib.suppress(orjson.JSONDecodeError):
            text = orjson.dumps(orjson.loads(value), option=orjson.OPT_INDENT_2).decode()
    if len(text) > limit:
        return text[:limit] + f"… ({len(text) - limit:,} more characters)"
    return text
