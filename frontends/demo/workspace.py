"""The simulated workspace service: blocks kept as JSON files, each saved whole.

Like PuppyFlow's ``FileWorkspaceStore.addHistory`` overwriting ``latest.json``, a save
replaces the whole document. The store stamps a version, the last writer and the time in
the document's ``_meta`` (``last_updated_by``, ``version``), and it is
instrumented the way a user would instrument their own store: every save hands what was
stored and what is about to be stored to ``audit.record``, which emits one transition per
changed field.

Two ways to save, one per run mode:

* ``save`` — what the service does today: the writer sends its whole copy, stamped with the
  version it read, and the new version is that + 1 (version numbers were added, the check
  was not); the store only keeps versions from going backwards. Every save gets through,
  and a writer that read an older version silently replaces the fields written since,
  under a version number that another write already produced (a fork).
* ``save_checked`` — the fix: ``audit.compare_and_swap`` refuses a save made from a version
  that is no longer the stored one (``audit.ConflictError``, HTTP 409), and the writer
  priorities (``audit.merge_by_priority``) plus a freshness check on each
  field's ``source_ts`` keep a less authoritative or older write from replacing a field.

Each save is atomic (a per-block lock around read-compare-write, a rename on disk); the race
is between a writer's read and its save, as in the real system.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

import audit

ENTITY_TYPE = "block"
META = "_meta"  # store bookkeeping, not block data: kept out of the audited diff


def block_ids(count: int) -> list[str]:
    width = max(2, len(str(count)))
    return [f"block-{i:0{width}d}" for i in range(1, count + 1)]


def template_block(block_id: str, number: int) -> dict[str, Any]:
    """A block as the template defines it, with one file waiting to be indexed."""
    return {
        "id": block_id,
        "type": "text",
        "label": f"Section {number}",
        "content": f"Template text for section {number}.",
        "indexingList": [
            {
                "type": "vector",
                "file": f"kb/section-{number:02d}.md",
                "index_name": "",
                "status": "pending",
                "chunks": 0,
            }
        ],
        META: {"version": 1, "last_updated_by": "template", "last_updated_at": None},
    }


def get_path(doc: dict[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


@dataclass(frozen=True)
class Save:
    """One save the store applied, as the ground truth sees it."""

    entity: str
    before: dict[str, Any]  # the stored document, without _meta
    after: dict[str, Any]  # the saved document, without _meta
    writer: str
    actor: str
    write_id: str
    base_version: int
    version: int
    source_ts: float
    ts: float  # commit time, strictly increasing across the store
    intended: frozenset[str]  # fields the writer meant to change (the rest rode along)
    position: int  # this save is the block's n-th
    seen: int  # saves of the block the writer's copy reflected when it was read


@dataclass(frozen=True)
class Saved:
    """The store's answer to a save."""

    doc: dict[str, Any]  # the document as stored, with its stamp (the response body)
    refused: tuple[str, ...] = ()  # fields whose change the rules refused (kept as stored)


def version_of(doc: dict[str, Any]) -> int:
    return doc[META]["version"]


class BlockStore:
    """Blocks as JSON files in ``directory``; ``observe`` sees every applied save."""

    def __init__(self, directory: Path, observe: Callable[[Save], None]) -> None:
        self.directory = directory
        self.observe = observe
        self.directory.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._positions: dict[str, int] = {}  # saves applied per block
        self._clock = threading.Lock()
        self._last_ts = 0.0
        self.saves = 0
        self.conflicts = 0  # compare-and-swap refusals

    def create(self, docs: list[dict[str, Any]]) -> None:
        """The workspace as instantiated from the template (before any writer runs)."""
        for doc in docs:
            self._locks[doc["id"]] = threading.Lock()
            self._positions[doc["id"]] = 0
            self._write_file(doc["id"], doc)

    def read(self, block_id: str) -> dict[str, Any]:
        return self._read_file(block_id)

    def checkout(self, block_id: str) -> tuple[dict[str, Any], int]:
        """The block and how many saves it reflects (for the ground truth's "seen")."""
        with self._locks[block_id]:
            return self._read_file(block_id), self._positions[block_id]

    def save(
        self,
        doc: dict[str, Any],
        *,
        writer: str,
        actor: str,
        write_id: str,
        source_ts: float,
        intended: frozenset[str],
        seen: int,
    ) -> Saved:
        """Last write wins: store ``doc`` as version (the version it was read at) + 1, or as
        the stored version if that is higher."""
        block_id = doc["id"]
        saved = copy.deepcopy(doc)  # the request body: the writer keeps its own copy
        base = version_of(saved)
        version = base + 1  # what the writer computed
        with self._locks[block_id]:
            stored = self._read_file(block_id)
            # The service's only guard: versions must not go backwards, so it keeps the
            # stored version when the writer's is older. Two writers that read the same
            # version, or one that read an older one, thereby fork: same version, two states.
            version = max(version, version_of(stored))
            if not audit.diff(stored, saved, exclude={META}):
                return Saved(saved)  # nothing to save: "not modified", keep what you have
            saved[META] = {**saved[META], "version": version}
            # The instrumentation: what is stored against what is about to be stored, so a
            # whole-document save that reverts another writer's field is seen. It also
            # stamps `saved` with the writer and the time (the design's last_updated_by).
            audit.record(
                block_id, stored, saved, entity_type=ENTITY_TYPE, base_version=base,
                version=version, source_ts=_utc(source_ts), write_id=write_id,
            )
            self._commit(stored, saved, writer, actor, write_id, base, source_ts, intended, seen)
            return Saved(saved)

    def save_checked(
        self,
        doc: dict[str, Any],
        *,
        writer: str,
        actor: str,
        write_id: str,
        source_ts: float,
        intended: frozenset[str],
        seen: int,
    ) -> Saved:
        """Compare-and-swap, then the priority rule: raises ``audit.ConflictError`` when the block
        moved on since ``doc`` was read; refuses (keeps as stored) each field a more
        authoritative writer set recently or that holds newer data than ``source_ts``."""
        block_id = doc["id"]
        saved = copy.deepcopy(doc)
        base = version_of(saved)
        with self._locks[block_id]:
            stored = self._read_file(block_id)
            refused = self._refuse_older(stored, saved, source_ts)
            saved, by_priority = audit.merge_by_priority(stored, saved, writer=writer)
            refused += by_priority
            changed = [c[0] for c in audit.diff(stored, saved, exclude={META})]
            if not changed and base == version_of(stored):
                return Saved(stored, tuple(refused))  # nothing left to save
            try:
                audit.compare_and_swap(
                    block_id, stored, saved, expected_version=base, entity_type=ENTITY_TYPE,
                    source_ts=_utc(source_ts),
                )
            except audit.ConflictError:
                self.conflicts += 1
                raise
            # compare_and_swap stamped the new version and the id it gave the write.
            write_id = saved[META].get("write_id", write_id)
            held = dict(stored[META].get("source_ts", {}))
            held.update(dict.fromkeys(changed, source_ts))
            saved[META] = {**saved[META], "version": version_of(stored) + 1, "source_ts": held}
            self._commit(stored, saved, writer, actor, write_id, base, source_ts, intended, seen)
            return Saved(saved, tuple(refused))

    def _refuse_older(
        self, stored: dict[str, Any], saved: dict[str, Any], source_ts: float
    ) -> list[str]:
        """Keep the stored value of each field that holds data newer than this write's.

        Each field's source_ts is kept in the stamp (``_meta.source_ts``), next to the
        per-field writer stamps the priority rule reads.
        """
        held = stored[META].get("source_ts", {})
        refused = []
        for field, _change, _old, _new in audit.diff(stored, saved, exclude={META}):
            if source_ts < held.get(field, float("-inf")):
                set_path(saved, field, get_path(stored, field))
                refused.append(field)
        return refused

    def _commit(
        self,
        stored: dict[str, Any],
        saved: dict[str, Any],
        writer: str,
        actor: str,
        write_id: str,
        base: int,
        source_ts: float,
        intended: frozenset[str],
        seen: int,
    ) -> None:
        ts = self._commit_time()
        self._write_file(saved["id"], saved)
        self.saves += 1
        self._positions[saved["id"]] += 1
        self.observe(
            Save(
                saved["id"],
                {k: v for k, v in stored.items() if k != META},
                {k: v for k, v in saved.items() if k != META},
                writer, actor, write_id, base, version_of(saved), source_ts, ts, intended,
                self._positions[saved["id"]], seen,
            )
        )

    def _commit_time(self) -> float:
        # Strictly increasing, so commit order by time is the order saves really happened.
        with self._clock:
            self._last_ts = max(time.time(), self._last_ts + 1e-6)
            return self._last_ts

    def _file(self, block_id: str) -> Path:
        return self.directory / f"{block_id}.json"

    def _read_file(self, block_id: str) -> dict[str, Any]:
        return orjson.loads(self._file(block_id).read_bytes())

    def _write_file(self, block_id: str, doc: dict[str, Any]) -> None:
        path = self._file(block_id)
        tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
        tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        os.replace(tmp, path)


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
