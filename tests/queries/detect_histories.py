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


def one_of_each():
    """A history where every detector fires once at least."""
    return [
        # lost_update (version), chain_break, priority_inversion, stale_overwrite (revert)
        ev("a1", 0, "A", "v", "workflow", new="x", base_version=0, version=1),
        ev("a2", 10, "A", "v", "user", old="x", new="y", base_version=1, version=2),
        ev("a3", 12, "A", "v", "polling_sync", old="y", new="x", base_version=1, version=3,
           source_t=-5),
        # version_conflict: two writes produce version 2
        ev("b1", 0, "B", "v", "user", new="x", base_version=0, version=1),
        ev("b2", 10, "B", "v", "user", old="x", new="y", base_version=1, version=2,
           write_id="b-1"),
        ev("b3", 20, "B", "w", "workflow", new="z", base_version=1, version=2,
           write_id="b-2"),
        # oscillation and stale_overwrite by source time
        ev("c1", 0, "C", "s", "workflow", new="done", source_t=0),
        ev("c2", 5, "C", "s", "polling_sync", old="done", new="error", source_t=-10),
        ev("c3", 8, "C", "s", "workflow", old="error", new="done", source_t=8),
        # chain_break: d2 replaced a value nobody recorded
        ev("d1", 0, "D", "v", "user", new="x"),
        ev("d2", 400, "D", "v", "user", old="zz", new="y"),
    ]


def many_of_each(copies: int) -> list[dict[str, Any]]:
    """``one_of_each`` over ``copies`` sets of entities (A-0, B-0, …), each set with an
    entity whose writes are partly versioned (ordered by ts: docs/contract.md §2)."""
    events = []
    for n in range(copies):
        for e in one_of_each():
            events.append({**e, "event_id": f"{e['event_id']}-{n}", "entity": f"{e['entity']}-{n}"})
        events += [
            ev(f"m1-{n}", 0, f"M-{n}", "v", "user", new="x", base_version=0, version=1),
            ev(f"m2-{n}", 10, f"M-{n}", "v", "workflow", old="x", new="y"),
            ev(f"m3-{n}", 12, f"M-{n}", "v", "polling_sync", old="x", new="z", version=2),
        ]
    return events
