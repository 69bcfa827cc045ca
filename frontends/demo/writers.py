"""The four racing writers of a workflow workspace, each with a seeded plan.

A plan is everything random about a writer, drawn up front from ``--seed``: which blocks it
touches, what it writes and how long each step takes (a few milliseconds, as real network
and processing delays scaled down). Running the plan is plain sequential code with real
sleeps, so the writers genuinely race; two runs with one seed do the same work, while the
exact interleaving is left to the scheduler (the ground truth is exact either way).

* workflow — the engine streams BLOCK_UPDATED events over SSE; the frontend applies each to
  the block it loaded when the run started and saves the whole block.
* instantiation — uploads the template's files, polls for embedding completion, then
  writes the indexing status, all on the copy it read before uploading.
* polling_sync — mirrors external storage's manifests into blocks; a cache sometimes hands
  it an older manifest.
* user — renames blocks and edits their content.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from frontends.demo.client import Client, WorkingCopy

KINDS = ("workflow", "instantiation", "polling_sync", "user")
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
STATUS = "indexingList.0.status"
CHUNKS = "indexingList.0.chunks"
INDEX_NAME = "indexingList.0.index_name"


def actor_names(kind: str, count: int) -> list[str]:
    if kind == "user":
        return [USERS[i] if i < len(USERS) else f"user-{i + 1}" for i in range(count)]
    prefix = {"workflow": "engine", "instantiation": "task", "polling_sync": "sync"}[kind]
    return [f"{prefix}-{i + 1}" for i in range(count)]


@dataclass(frozen=True)
class Manifest:
    status: str
    chunks: int
    produced_at: float


class ExternalStorage:
    """PuppyStorage's manifests: the embedding state of each block's file, with history."""

    def __init__(self) -> None:
        self._history: dict[str, list[Manifest]] = {}
        self._lock = threading.Lock()

    def publish(self, block: str, status: str, chunks: int) -> Manifest:
        manifest = Manifest(status, chunks, time.time())
        with self._lock:
            self._history.setdefault(block, []).append(manifest)
        return manifest

    def fetch(self, block: str, *, cached: bool) -> Manifest | None:
        """The latest manifest, or with ``cached`` the one before it (a stale cache hit)."""
        with self._lock:
            history = self._history.get(block, [])
            if not history:
                return None
            return history[-2] if cached and len(history) >= 2 else history[-1]


# --- plans -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamRun:
    block: str
    gaps: tuple[float, ...]  # SSE delivery + frontend apply, per BLOCK_UPDATED event
    embed_chunks: int  # > 0: the run ends with a manual embedding of the block's file
    pause: float


@dataclass(frozen=True)
class Instantiate:
    block: str
    upload: float
    polls: tuple[float, ...]  # waits between embedding-status polls
    outcome: str  # done | error
    chunks: int


@dataclass(frozen=True)
class Poll:
    block: str
    interval: float
    fetch: float
    cached: bool


@dataclass(frozen=True)
class Edit:
    block: str
    field: str  # label or content
    think: float
    typing: float


Plan = list[Any]


def chunk_count(block: str) -> int:
    """How many chunks embedding the block's file yields: a property of the file."""
    return 8 + sum(map(ord, block)) % 33


def hot_picker(blocks: list[str], seed: int) -> Callable[[random.Random], str]:
    """Some blocks are busier than others (Zipf-like), the same ones for every writer."""
    ranked = list(blocks)
    random.Random(f"{seed}:hot").shuffle(ranked)
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(ranked))]
    return lambda rng: rng.choices(ranked, weights)[0]


def _fill(duration: float, step: Callable[[], tuple[Any, float]]) -> Plan:
    plan, spent = [], 0.0
    while spent < duration:
        item, cost = step()
        plan.append(item)
        spent += cost
    return plan


def plan_workflow(rng: random.Random, pick: Callable, duration: float) -> Plan:
    def step() -> tuple[StreamRun, float]:
        gaps = tuple(rng.uniform(0.004, 0.012) for _ in range(rng.randint(3, 6)))
        block = pick(rng)
        embed = chunk_count(block) if rng.random() < 0.35 else 0
        run = StreamRun(block, gaps, embed, rng.uniform(0.01, 0.05))
        return run, sum(gaps) + run.pause + (gaps[-1] if embed else 0.0)

    return _fill(duration, step)


def plan_instantiation(
    rng: random.Random, blocks: list[str], duration: float
) -> Plan:
    """Each of the actor's blocks once, spread over the run like a large template."""
    order = list(blocks)
    rng.shuffle(order)
    budget = duration * 0.9 / max(1, len(order))
    plan = []
    for block in order:
        polls = rng.randint(2, 5)
        plan.append(
            Instantiate(
                block,
                upload=budget * rng.uniform(0.2, 0.4),
                polls=tuple(budget * rng.uniform(0.4, 0.6) / polls for _ in range(polls)),
                outcome="done" if rng.random() < 0.85 else "error",
                chunks=chunk_count(block),
            )
        )
    return plan


def plan_polling(rng: random.Random, blocks: list[str], duration: float) -> Plan:
    def step() -> tuple[Poll, float]:
        poll = Poll(rng.choice(blocks), rng.uniform(0.008, 0.025), rng.uniform(0.002, 0.006),
                    cached=rng.random() < 0.2)
        return poll, poll.interval + poll.fetch

    return _fill(duration, step)


def plan_user(rng: random.Random, pick: Callable, duration: float) -> Plan:
    def step() -> tuple[Edit, float]:
        what = "content" if rng.random() < 0.35 else "label"
        edit = Edit(pick(rng), what, rng.uniform(0.03, 0.10), rng.uniform(0.01, 0.04))
        return edit, edit.think + edit.typing

    return _fill(duration, step)


# --- behaviour ---------------------------------------------------------------------------


@dataclass
class Actor:
    kind: str
    name: str
    plan: Plan
    client: Client
    storage: ExternalStorage
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        {
            "workflow": run_workflow,
            "instantiation": run_instantiation,
            "polling_sync": run_polling,
            "user": run_user,
        }[self.kind](self)


def run_workflow(actor: Actor) -> None:
    for number, run in enumerate(actor.plan, start=1):
        if actor.stop.is_set():
            return
        copy: WorkingCopy = actor.client.open(run.block)
        for step, gap in enumerate(run.gaps, start=1):
            produced = time.time()  # the engine's BLOCK_UPDATED carries this updated_at
            time.sleep(gap)
            text = f"{actor.name} run {number}: output {step}/{len(run.gaps)}"
            actor.client.write(copy, {"content": text}, source_ts=produced)
        if run.embed_chunks:
            manifest = actor.storage.publish(run.block, "done", run.embed_chunks)
            time.sleep(run.gaps[-1])
            actor.client.write(
                copy, {STATUS: "done", CHUNKS: run.embed_chunks}, source_ts=manifest.produced_at
            )
        time.sleep(run.pause)


def run_instantiation(actor: Actor) -> None:
    for job in actor.plan:
        if actor.stop.is_set():
            return
        copy = actor.client.open(job.block)  # T1: read the block before uploading
        time.sleep(job.upload)
        uploaded = actor.storage.publish(job.block, "processing", 0)
        actor.client.write(
            copy,
            {STATUS: "processing", INDEX_NAME: f"idx-{job.block}"},
            source_ts=uploaded.produced_at,
        )
        for wait in job.polls:  # poll PuppyStorage until the embedding finishes
            time.sleep(wait)
        finished = actor.storage.publish(job.block, job.outcome, job.chunks)
        # T4: the status goes onto the copy read at T1, and the whole block is saved.
        actor.client.write(
            copy,
            {STATUS: job.outcome, CHUNKS: job.chunks if job.outcome == "done" else 0},
            source_ts=finished.produced_at,
        )


def run_polling(actor: Actor) -> None:
    for poll in actor.plan:
        if actor.stop.is_set():
            return
        time.sleep(poll.interval)
        copy = actor.client.open(poll.block)
        time.sleep(poll.fetch)
        manifest = actor.storage.fetch(poll.block, cached=poll.cached)
        if manifest is None:
            continue
        changes = {STATUS: manifest.status, CHUNKS: manifest.chunks}
        if all(copy.get(path) == value for path, value in changes.items()):
            continue  # already in sync with what it read
        actor.client.write(copy, changes, source_ts=manifest.produced_at)


def run_user(actor: Actor) -> None:
    for number, edit in enumerate(actor.plan, start=1):
        if actor.stop.is_set():
            return
        time.sleep(edit.think)
        copy = actor.client.open(edit.block)
        time.sleep(edit.typing)
        if edit.field == "label":
            value = f"{copy.get('label').split(' (')[0]} ({actor.name}, edit {number})"
        else:
            value = f"{actor.name}'s text, edit {number}"
        actor.client.write(copy, {edit.field: value}, source_ts=time.time())
