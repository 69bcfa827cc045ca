"""A minimal valid event for the ingest tests; keyword overrides, ``...`` drops a key."""

from __future__ import annotations


def event(**overrides) -> dict:
    base = {
        "event": "field.transition",
        "ts": "2026-01-01T10:00:00Z",
        "entity": "block-A",
        "field": "content",
        "old": "a",
        "new": "b",
        "writer": "user",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}
