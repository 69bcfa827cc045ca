"""JSON with integers exact at any size, and nothing JSON does not allow.

orjson, on every hot path here, writes no integer beyond 64 bits (it raises, and the event
would be dropped: `audit.health` counts it) and reads one as a float, silently
(123456789012345678901234 comes back 1.2345678901234568e+23). The contract keeps such
integers exact, as the ingest does (collectors/rules.py). `loads` and `dumps` take orjson's
way and leave it only for what needs it: a run of 20 digits in the text read, an integer out
of range in the value written. Both raise orjson's own errors, so callers catch one kind.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import orjson

# 2**64 has 20 digits: any integer orjson would read as a float has a run of 20 or more.
# Found by mapping every digit to "0" and looking for twenty of them: a regular expression
# tries a match at every digit: 3.4 us on a 330-byte event line against 0.45 us for this
# (timeit, one-off), and the collector looks at every body it is sent
# (collectors/serve_intake.py).
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_TWENTY_DIGITS = b"0" * 20
_INT64 = 2**63  # orjson writes -2**63 <= n < 2**64


class NotJson(orjson.JSONDecodeError):
    """What Python's json module reads and JSON (RFC 8259) does not allow, or cannot parse."""

    def __init__(self, message: str):
        super().__init__(message, "", 0)

    def __str__(self) -> str:
        return self.msg


def has_long_digits(text: str | bytes) -> bool:
    """Whether ``text`` may hold an integer orjson would read as a float."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return _TWENTY_DIGITS in data.translate(_DIGITS_AS_ZERO)


def loads(text: str | bytes) -> Any:
    """``orjson.loads``, with integers beyond 64 bits exact. Raises ``orjson.JSONDecodeError``."""
    if not has_long_digits(text):
        return orjson.loads(text)
    try:
        value = strict_loads(text)
        if (b"\\ud" if isinstance(text, bytes | bytearray) else "\\ud") in text.lower():
            orjson.dumps(exact_ints(value))  # json takes a lone surrogate; orjson does not
        return value
    except orjson.JSONEncodeError as exc:
        raise NotJson(f"cannot be written back as JSON ({exc})") from None
    except NotJson:
        raise
    except json.JSONDecodeError as exc:
        raise orjson.JSONDecodeError(exc.msg, exc.doc, exc.pos) from None
    except RecursionError:
        raise NotJson("is nested too deep") from None
    except ValueError as exc:  # bytes that are not UTF-8
        raise NotJson(str(exc)) from None


def strict_loads(text: str | bytes) -> Any:
    """``json.loads`` with exact integers, refusing NaN, Infinity and numbers beyond a double
    (`NotJson`), which it would take. Raises what the json module raises for the rest."""
    return json.loads(text, parse_constant=_constant, parse_float=_finite, parse_int=_integer)


def dumps(value: Any, *, default: Callable[[Any], Any] | None = None, option: int = 0) -> bytes:
    """``orjson.dumps``, writing integers beyond 64 bits as their digits."""
    try:
        return orjson.dumps(value, default=default, option=option)
    except orjson.JSONEncodeError:
        return dumps_refused(value, default=default, option=option)


def dumps_refused(
    value: Any, *, default: Callable[[Any], Any] | None = None, option: int = 0
) -> bytes:
    """What `dumps` does once ``orjson.dumps`` has refused ``value``: write it again with
    long integers as text; anything else orjson refuses raises again. For a caller that
    made the first try itself (`audit.emit.render`, on every tracked write)."""

    def exact_default(v: Any) -> Any:
        return exact_ints(default(v))  # a model's dump may hold long integers too

    return orjson.dumps(
        exact_ints(value), default=exact_default if default else None, option=option
    )


def exact_ints(value: Any) -> Any:
    """``value`` with integers orjson cannot write as fragments of JSON text (digits)."""
    if type(value) is int:
        return value if -_INT64 <= value < 2 * _INT64 else orjson.Fragment(str(value))
    if isinstance(value, dict):
        return {k: exact_ints(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [exact_ints(v) for v in value]
    return value


def _constant(name: str) -> float:
    raise NotJson("holds NaN or Infinity, which JSON does not allow (RFC 8259)")


def _finite(number: str) -> float:
    # Beyond a double: float() gives inf for "1e400", and raises for a 400-digit integer.
    try:
        value = float(number)
    except OverflowError:
        value = math.inf
    if math.isinf(value):
        raise NotJson("holds a number out of range (beyond a 64-bit float)")
    return value


def _integer(number: str) -> int:
    _finite(number)  # an integer beyond a double is out of range, as everywhere else
    return int(number)
