"""Field paths (docs/diff.md, "Paths"): one field of every list element.

`indexingList.3.status` and `indexingList.7.status` are the same field of two items, as are
`nodes[block-A].data.content` and `nodes[block-B].data.content` of two keyed elements. Who
owns a field, and where conflicts gather, is told per folded path.
"""

from __future__ import annotations

import re
from functools import lru_cache

# An element of a keyed list: its key in brackets, `]` and `\` inside escaped with `\`.
_KEYED = re.compile(r"\[(?:[^\]\\]|\\.)*\]")
_INDEX = re.compile(r"[0-9]+")


@lru_cache(maxsize=65536)  # a store has few distinct paths and many findings on them
def fold(field_path: str) -> str:
    """List positions and keys folded to `*`: ``nodes[block-A].items.3`` -> ``nodes[*].items.*``."""
    keyless = _KEYED.sub("[*]", field_path)
    return ".".join("*" if _INDEX.fullmatch(part) else part for part in keyless.split("."))
