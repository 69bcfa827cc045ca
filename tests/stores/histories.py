"""A seeded history with every anomaly and the edge cases, for comparing stores.

Random but reproducible: entities versioned, unversioned or mixed; writes of one to three
fields sharing a write_id (or none); stale reads, blind writes, first transitions that
carry an `old`, removals, forks and versions not above the version read, older source
times, explicit priorities, writers without a configured priority, writes a guard refused
(attrs.rejected true, as JSON and as text), duplicate lines and lines to reject. Gaps
between writes are drawn from a list that includes the detectors' window edges exactly
(60 s, 120 s, 300 s, and a microsecond either side), and equal times.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

T0 = datetime(2026, 5, 1, 9, 0, 0, tzinfo=UTC)
WRITERS = ("user", "workflow", "instantiation", "polling_sync", "heartbeat", "importer")
FIELDS = ("status", "content", "indexingList.0.status", "nodes[a].data", "$")
VALUES: tuple[Any, ...] = ("a", "b", "c", 1, 2, None, {"k": 1, "j": [1, 2]}, [1, 2], True)
GAPS = (0, 0.000001, 0.5, 1, 5, 30, 59.999999, 60, 60.000001, 119.999999, 120, 120.000001,
        299.999999, 300, 300.000001, 600, 3600)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def history(events: int, seed: int) -> list[str]:
    """About ``events`` JSON lines (a few of them malformed), shuffled."""
    rng = random.Random(seed)
    lines: list[str] = []
    n = 0
    entity_no = 0
    while n < events:
        entity_no += 1
        entity = f"e-{entity_no}"
        kind = rng.choice(("versioned", "unversioned", "mixed"))
        t = T0 + timedelta(seconds=rng.randrange(0, 86_400))
        version = 0
        values: dict[str, Any] = {}
        history_of: dict[str, list[Any]] = {}
        for w in range(rng.randint(2, 12)):
            t += timedelta(seconds=rng.choice(GAPS))
            writer = rng.choice(WRITERS)
            fields = rng.sample(FIELDS, rng.randint(1, 3))
            write_id = f"{entity}/w{w}" if rng.random() < 0.8 else None
            extra: dict[str, Any] = {}
            if kind == "versioned" or (kind == "mixed" and rng.random() < 0.5):
                roll = rng.random()
                base = version if roll < 0.7 else max(0, version - rng.randint(1, 2))
                produced = version + 1
                if roll > 0.93:
                    produced = version  # a fork: the version another write produced
                elif roll > 0.9:
                    produced = base  # not newer than what it read
                extra |= {"base_version": base, "version": produced}
                version = max(version, produced)
            if rng.random() < 0.25:
                lag = rng.choice((-120, -30, 0, 1))
                extra["source_ts"] = _iso(t + timedelta(seconds=lag))
            if rng.random() < 0.05:
                extra["priority"] = rng.choice((10, 90, 150))
            if rng.random() < 0.04:
                extra["attrs"] = {"rejected": rng.choice((True, "true"))}
            elif rng.random() < 0.05:
                extra["attrs"] = {"note": "x", "rejected": False}
            ts = _iso(t)
            for f in fields:
                before = history_of.setdefault(f, [])
                event: dict[str, Any] = {
                    "event": "field.transition", "event_id": f"{entity}-{w}-{f}", "ts": ts,
                    "entity": entity, "entity_type": rng.choice(("block", None)),
                    "field": f, "writer": writer, "actor": rng.choice((None, "a1", "a2")),
                }
                if write_id:
                    event["write_id"] = write_id
                new = rng.choice(VALUES)
                roll = rng.random()
                if f not in values:
                    if roll < 0.3:  # a first transition that says what was there
                        event |= {"change": "changed", "old": rng.choice(VALUES), "new": new}
                    else:
                        event |= {"change": "added", "new": new}
                elif roll < 0.08:
                    event |= {"change": "removed", "old": values[f]}
                    new = None
                elif roll < 0.16:
                    event |= {"change": "changed", "new": new}  # blind: no old
                elif roll < 0.3 and len(before) > 1:
                    event |= {"change": "changed", "old": before[-2], "new": new}  # stale
                else:
                    event |= {"change": "changed", "old": values[f], "new": new}
                event |= extra
                if event.get("entity_type") is None:
                    event.pop("entity_type")
                if event.get("actor") is None:
                    event.pop("actor")
                if f in values or "new" in event:
                    values[f] = new
                before.append(new)
                lines.append(json.dumps(event))
                n += 1
                if rng.random() < 0.005:
                    lines.append(lines[-1])  # the same event twice
    for i in range(max(3, events // 5000)):
        lines.append(rng.choice(('{"event": "field.transition", "ts": "x"}', "not json",
                                 '{"event": "other"}', '{"entity": "e-1"}')) + " " * i)
    rng.shuffle(lines)
    return lines


def write_history(path: Path, events: int, seed: int) -> Path:
    path.write_text("\n".join(history(events, seed)) + "\n", encoding="utf-8")
    return path
