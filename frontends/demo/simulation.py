"""Run the workload: a workspace, its ground truth, and the racing writer threads."""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import audit
from audit.config import Config
from frontends.demo.client import Client
from frontends.demo.truth import GroundTruth
from frontends.demo.workspace import BlockStore, block_ids, template_block
from frontends.demo.writers import (
    KINDS,
    Actor,
    ExternalStorage,
    actor_names,
    hot_picker,
    plan_instantiation,
    plan_polling,
    plan_user,
    plan_workflow,
)


@dataclass(frozen=True)
class Workload:
    seed: int = 7
    duration: float = 5.0  # seconds of planned writer activity, per run
    blocks: int = 12
    writers: int = 1  # concurrent actors of each kind


@dataclass
class Simulation:
    """What one run did, as the store and the writers saw it (not the audit)."""

    safe: bool
    truth: GroundTruth
    store: BlockStore
    actors: list[Actor]
    seconds: float = 0.0
    stats: dict[str, int] = field(default_factory=dict)
    refused: Counter = field(default_factory=Counter)  # (writer, field) -> refused changes


def plan_actors(
    workload: Workload, store: BlockStore, storage: ExternalStorage, *, safe: bool
) -> list[Actor]:
    blocks = block_ids(workload.blocks)
    pick = hot_picker(blocks, workload.seed)
    actors = []
    for kind in KINDS:
        names = actor_names(kind, workload.writers)
        for index, name in enumerate(names):
            rng = random.Random(f"{workload.seed}:{kind}:{index}")
            if kind == "workflow":
                plan = plan_workflow(rng, pick, workload.duration)
            elif kind == "instantiation":
                plan = plan_instantiation(rng, blocks[index :: len(names)], workload.duration)
            elif kind == "polling_sync":
                plan = plan_polling(rng, blocks, workload.duration)
            else:
                plan = plan_user(rng, pick, workload.duration)
            client = Client(store, writer=kind, actor=name, safe=safe)
            actors.append(Actor(kind, name, plan, client, storage))
    return actors


def simulate(
    workload: Workload,
    directory: Path,
    *,
    safe: bool,
    config: Config | None = None,
    tick: Callable[[float, int], None] | None = None,
) -> Simulation:
    """Run the writers against a fresh workspace kept in ``directory``.

    Events go wherever ``audit`` is configured to send them. ``tick(elapsed_fraction,
    saves)`` is called a few times a second from this thread while the writers run.
    """
    truth = GroundTruth(config=config or Config())
    store = BlockStore(directory, truth.observe)
    blocks = block_ids(workload.blocks)
    store.create([template_block(b, n) for n, b in enumerate(blocks, start=1)])
    actors = plan_actors(workload, store, ExternalStorage(), safe=safe)
    sim = Simulation(safe, truth, store, actors)
    sim.seconds = _race(actors, workload.duration, store, tick)
    sim.stats = _totals(sim)
    for actor in actors:
        for path, n in actor.client.stats.refused.items():
            sim.refused[(actor.kind, re.sub(r"\.\d+(?=\.|$)", ".*", path))] += n
    return sim


def _race(
    actors: list[Actor],
    duration: float,
    store: BlockStore,
    tick: Callable[[float, int], None] | None,
) -> float:
    start = threading.Barrier(len(actors) + 1)
    errors: list[BaseException] = []

    def body(actor: Actor) -> None:
        # The writer scope is entered inside the thread: a new thread starts with an empty
        # context, so every writer declares who it is, as a request handler would.
        with audit.writer(actor.kind, actor=actor.name):
            start.wait()
            try:
                actor.run()
            except BaseException as exc:  # surfaced in the main thread below
                errors.append(exc)
                for other in actors:
                    other.stop.set()

    threads = [
        threading.Thread(target=body, args=(a,), name=f"demo-{a.name}", daemon=True)
        for a in actors
    ]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    try:
        while any(t.is_alive() for t in threads):
            if tick:
                tick(min(1.0, (time.perf_counter() - began) / duration), store.saves)
            next(t for t in threads if t.is_alive()).join(timeout=0.1)
    except KeyboardInterrupt:
        for a in actors:
            a.stop.set()
        raise
    if errors:
        raise errors[0]
    if tick:
        tick(1.0, store.saves)
    return time.perf_counter() - began


def _totals(sim: Simulation) -> dict[str, int]:
    out = {"writes": 0, "retries": 0, "refused_fields": 0}
    for actor in sim.actors:
        for key in out:
            out[key] += getattr(actor.client.stats, key)
    out["transitions"] = sum(len(h) for h in sim.truth.transitions.values())
    return out
