"""Text from the store made safe for a terminal.

Entities, fields, writers and values come from the services' own data and may hold control
characters: ESC sequences (``\\x1b[2J`` clears the screen, ``\\x1b]0;…`` sets the window
title), BEL, C1 controls, or bidirectional overrides that make a line read differently
than it is. Printed raw, they act on the reader's terminal. ``printable`` shows each as a
visible escape instead (``\\x1b``, ``\\u202e``). Only text bound for a terminal goes
through it: JSON and CSV output keep the data exact.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

# C0 controls (newline and tab included: a value's line break must not break a table row),
# DEL, C1 controls, and the Unicode bidirectional marks, embeddings, overrides and isolates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` with every control character shown as a visible escape."""
    return _UNSAFE.sub(_escape, str(text))


def printable_text(text: object, style: str = "") -> Text:
    """``text`` as a rich cell: never read as markup, control characters escaped."""
    from rich.text import Text  # rich (~20 ms to import) only where something is printed

    return Text(printable(text), style=style)
