"""Histories for the detector tests: events written as JSONL and loaded through the real ingest."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from collectors.ingest import ingest
from collectors.store import open_store

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
ABSENT = object()  # a key left out of the event (as opposed to JSON null)


def at(seconds: float) -> str:
    """RFC 3339 for T0 + seconds."""
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def ev(
    event_id: str,
    t: float,
    entity: str,
    field: str,
    writer: str,
    old: Any = ABSENT,
    new: Any = ABSENT,
    **extra: Any,
) -> dict[str, Any]:
    """One transition event; ``change`` follows from which of old/new are given."""
    e: dict[str, Any] = {"event": "field.transition", "event_id": event_id, "ts": at(t),
                         "entity": entity, "field": field, "writer": writer}
    if old is not ABSENT:
        e["old"] = old
    if new is not ABSENT:
        e["new"] = new
    if old is ABSENT:
        e["change"] = "added"
    elif new is ABSENT:
        e["change"] = "removed"
    for key, value in extra.items():
        if key == "source_t":
            e["source_ts"] = at(value)
        elif value is not None:
            e[key] = value
    return e


def load(db: Path, events: list[dict[str, Any]], *, seed: int | None = None,
         extra_lines: list[str] = ()) -> None:
    """Write ``events`` as JSONL (shuffled when ``seed`` is given) and ingest the file."""
    lines = [json.dumps(e, ensure_ascii=False) for e in events] + list(extra_lines)
    if seed is not None:
        random.Random(seed).shuffle(lines)
    path = db.with_suffix(f".{seed if seed is not None else 'x'}.jsonl")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    con = open_store(db)
    try:
        ingest(con, [str(path)])
    finally:
        con.close()


def summary(findings) -> set[tuple[str, str, str, tuple[str, ...]]]:
    """What a test compares: detector, entity, field and witnesses in order."""
    return {(f.detector, f.entity, f.field, tuple(f.event_ids)) for f in findings}
