"""How a writer talks to the block store: as the service does today, or with the fix.

A writer opens a block (its working copy, like the frontend's React state or a task's
in-memory object), works for a while, then writes changes to some fields.

* unsafe — the changes go onto the working copy and the whole copy is saved: the last
  write wins, whatever happened to the block since the copy was read.
* safe — optimistic locking (versions and compare-and-swap): the store refuses a save
  made from a version that is no longer the stored one (``audit.ConflictError``, a 409);
  the writer then reads the block again, re-applies *its own changes only* and retries.
  The store also applies the writer-priority rule (`audit.merge_by_priority`), so some
  changes come back refused (kept as stored).
"""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import audit
from frontends.demo.workspace import META, BlockStore, get_path, set_path

MAX_ATTEMPTS = 100


@dataclass
class WorkingCopy:
    """A writer's copy of a block; its stamp holds the version the writer believes it has."""

    doc: dict[str, Any]
    seen: int = 0  # saves of the block reflected when it was read (for the ground truth)

    def get(self, path: str) -> Any:
        return get_path(self.doc, path)

    @property
    def version(self) -> int:
        return self.doc[META]["version"]


@dataclass
class ClientStats:
    writes: int = 0  # writes the writer made (one per `write` call)
    retries: int = 0  # safe: compare-and-swap refusals, each followed by a fresh read
    refused: Counter = field(default_factory=Counter)  # safe: field path -> refusals by rule

    @property
    def refused_fields(self) -> int:
        """Field changes the priority/freshness rules refused."""
        return sum(self.refused.values())


class Client:
    def __init__(self, store: BlockStore, *, writer: str, actor: str, safe: bool) -> None:
        self.store = store
        self.writer = writer
        self.actor = actor
        self.safe = safe
        self.stats = ClientStats()
        self._ids = itertools.count(1)

    def open(self, block_id: str) -> WorkingCopy:
        return WorkingCopy(*self.store.checkout(block_id))

    def write(self, working: WorkingCopy, changes: dict[str, Any], *, source_ts: float) -> None:
        """Write ``changes`` (field path -> value) from data produced at ``source_ts``."""
        write_id = f"{self.actor}#{next(self._ids)}"
        self.stats.writes += 1
        if self.safe:
            self._write_checked(working, changes, source_ts, write_id)
        else:
            self._write_whole(working, changes, source_ts, write_id)

    def _write_whole(
        self, working: WorkingCopy, changes: dict[str, Any], source_ts: float, write_id: str
    ) -> None:
        for path, value in changes.items():
            set_path(working.doc, path, value)
        saved = self.store.save(
            working.doc, writer=self.writer, actor=self.actor, write_id=write_id,
            source_ts=source_ts, intended=frozenset(changes), seen=working.seen,
        )
        # The writer carries on from its own copy, at the version the service answered.
        working.doc[META] = {**working.doc[META], "version": saved.doc[META]["version"]}

    def _write_checked(
        self, working: WorkingCopy, changes: dict[str, Any], source_ts: float, write_id: str
    ) -> None:
        base, seen = working.doc, working.seen
        for _ in range(MAX_ATTEMPTS):
            doc = copy.deepcopy(base)
            for path, value in changes.items():
                set_path(doc, path, value)
            try:
                saved = self.store.save_checked(
                    doc, writer=self.writer, actor=self.actor, write_id=write_id,
                    source_ts=source_ts, intended=frozenset(changes), seen=seen,
                )
            except audit.ConflictError:
                self.stats.retries += 1
                base, seen = self.store.checkout(doc["id"])  # read again, re-apply ours
                continue
            working.doc, working.seen = saved.doc, seen
            self.stats.refused.update(saved.refused)
            return
        raise RuntimeError(f"{self.actor}: gave up after {MAX_ATTEMPTS} conflicting attempts")
