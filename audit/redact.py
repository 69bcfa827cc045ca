"""Redaction: sensitive fields leave the process as a hash and a length, never as a value.

Equal values give equal hashes, so the detectors, which compare values for equality, work
on redacted fields as they do on plain ones. A pattern ``content`` redacts a key named
``content`` wherever it sits and everything below it; ``a.b`` redacts keys ``b`` under
``a``. Values of changes higher up (a whole block added) are redacted inside as well.
Without a ``key`` the hash is a plain SHA-256, which a guesser can test short values
against; pass a secret ``key`` to make it an HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from audit import exact_json
from audit.diff import split_path

Processor = Callable[[Any, str, dict[str, Any]], dict[str, Any]]


def normalise(value: Any) -> Any:
    """Integral floats as ints (JSON has one number type), recursively: the store compares
    canonical JSON, where 1.0 is 1, and redaction hashes the same way."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(v) for v in value]
    return value


def redacted(value: Any, key: bytes | None = None) -> dict[str, Any]:
    """``{"sha256": hex, "len": n}`` for ``value`` (n: characters of a string, else of its JSON)."""
    text = exact_json.dumps(normalise(value), option=orjson.OPT_SORT_KEYS, default=str)
    digest = (
        hmac.new(key, text, hashlib.sha256).hexdigest() if key else hashlib.sha256(text).hexdigest()
    )
    return {"sha256": digest, "len": len(value) if isinstance(value, str) else len(text)}


def _matches(parts: list[str], pattern: list[str]) -> bool:
    n = len(pattern)
    return any(parts[i : i + n] == pattern for i in range(len(parts) - n + 1))


def redactor(fields: Iterable[str], key: bytes | None = None) -> Processor:
    """A structlog processor that redacts ``old``/``new`` of events touching ``fields``."""
    patterns = [p.split(".") for p in fields if p]
    if not patterns:
        return lambda _logger, _name, event: event

    def hide(value: Any, parts: list[str]) -> Any:
        if any(_matches(parts, p) for p in patterns):
            return redacted(value, key)
        if isinstance(value, dict):
            return {k: hide(v, [*parts, str(k)]) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [hide(v, [*parts, str(i)]) for i, v in enumerate(value)]
        return value

    def redact(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
        # nodes[a].text -> nodes, [a], text: a pattern naming the list covers its elements.
        parts = [f"[{step}]" if by_key else step for _, by_key, step in _steps(event)]
        for side in ("old", "new"):
            if side in event:
                value = event[side]
                if parts or isinstance(value, dict | list | tuple):
                    event[side] = hide(value, parts)
        return event

    return redact


def _steps(event: dict[str, Any]) -> tuple[tuple[int, bool, str], ...]:
    try:
        return split_path(str(event.get("field", "$")))
    except ValueError:  # not a path this package writes: its dotted parts
        return tuple((0, False, part) for part in str(event["field"]).split("."))
