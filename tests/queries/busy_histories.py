"""Histories of a busy but correct system: many writes, close together, and no conflict.

What a detector must stay quiet on (docs/contract.md §3). Every writer owns its fields and
writes from the latest state, except the poller:

* user        label and content; edits, and sometimes undoes its own edit a few seconds later
* workflow    indexingList.<i>.status; runs a block (idle -> processing -> done) and re-runs
              it within seconds (done -> processing -> done)
* instantiation  indexingList.<i>.file and .chunks, in one write
* polling_sync   echoes the status the workflow just set, a second or two later, from a read
              made before that write (its data older, by source_ts): stale, but leaving the
              value it found (convergent)
* heartbeat   lastSeenAt, a blind write (docs/contract.md §1): it never reads the value

Half the blocks are versioned (each write produces the next version, the base version is
the version its writer read), half are not. The only defensible findings are the poller's:
its stale read is a chain break, and its write a lost update that converges (a warning).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 4, 1, 8, 0, 0, tzinfo=UTC)
ABSENT = object()


class _Block:
    """One block's fields and version, and the events written so far."""

    def __init__(self, entity: str, versioned: bool, events: list[dict[str, Any]]) -> None:
        self.entity = entity
        self.version: int | None = 0 if versioned else None
        self.values: dict[str, Any] = {}
        self.events = events
        self.writes = 0

    def write(self, t: float, writer: str, changes: dict[str, Any], *, blind: bool = False,
              olds: dict[str, Any] | None = None, base: int | None = None,
              source: float | None = None) -> None:
        """One write at T0 + t seconds: field -> new value. ``olds`` and ``base`` stand for
        a stale read (the values and version the writer saw instead of the latest), and
        ``source`` for when the data it carries was produced (default: t)."""
        self.writes += 1
        write_id = f"{self.entity}/w{self.writes}"
        versions = {}
        if self.version is not None:
            versions = {"base_version": self.version if base is None else base,
                        "version": self.version + 1}
            self.version += 1
        ts, source_ts = (
            (T0 + timedelta(seconds=moment)).isoformat().replace("+00:00", "Z")
            for moment in (t, t if source is None else source)
        )
        for field, new in changes.items():
            old = (olds or {}).get(field, self.values.get(field, ABSENT))
            event: dict[str, Any] = {
                "event": "field.transition", "event_id": f"{write_id}/{field}", "ts": ts,
                "entity": self.entity, "entity_type": "block", "field": field,
                "writer": writer, "write_id": write_id, "new": new, "source_ts": source_ts,
                **versions,
            }
            if old is ABSENT:
                event["change"] = "added"
            elif not blind:
                event["old"] = old
            self.events.append(event)
            self.values[field] = new


def busy_history(blocks: int = 400, seed: int = 0) -> list[dict[str, Any]]:
    """Events of ``blocks`` blocks of a busy, correct system (about 30 per block)."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for n in range(blocks):
        block = _Block(f"block-{n:04d}", versioned=n % 2 == 0, events=events)
        t = rng.uniform(0, 3600)
        block.write(t, "user", {"label": f"Section {n}", "content": "draft"})
        items = rng.randint(1, 3)
        for i in range(items):
            t += rng.uniform(0.5, 3)
            block.write(t, "instantiation", {f"indexingList.{i}.file": f"kb/{n}-{i}.md",
                                             f"indexingList.{i}.chunks": 0})
            t += rng.uniform(0.1, 1)
            block.write(t, "workflow", {f"indexingList.{i}.status": "idle"})
        for run in range(rng.randint(2, 4)):  # runs and re-runs, seconds apart
            for i in range(items):
                t = _run(block, rng, t, i, echo=rng.random() < 0.7)
            if rng.random() < 0.5:  # the user edits meanwhile, and sometimes undoes it
                t += rng.uniform(0.5, 4)
                before = block.values["content"]
                block.write(t, "user", {"content": f"edit {run}"})
                if rng.random() < 0.5:
                    t += rng.uniform(1, 5)
                    block.write(t, "user", {"content": before})
            t += rng.uniform(0.5, 3)
            block.write(t, "heartbeat", {"lastSeenAt": round(t, 3)}, blind="lastSeenAt"
                        in block.values)
    return events


def _run(block: _Block, rng: random.Random, t: float, item: int, *, echo: bool) -> float:
    """The workflow runs one item: processing, then done (its chunks counted); the poller
    may echo done from the read it made before, while the value is still done."""
    status, chunks = f"indexingList.{item}.status", f"indexingList.{item}.chunks"
    t += rng.uniform(0.5, 5)
    block.write(t, "workflow", {status: "processing"})
    read = (block.values[status], block.version, t)  # the poller's read, before done
    t += rng.uniform(1, 8)
    block.write(t, "workflow", {status: "done"})
    t += rng.uniform(0.1, 1)
    block.write(t, "instantiation", {chunks: block.values[chunks] + rng.randint(1, 9)})
    if echo:
        t += rng.uniform(0.2, 2)
        block.write(t, "polling_sync", {status: "done"}, olds={status: read[0]}, base=read[1],
                    source=read[2])
    return t
