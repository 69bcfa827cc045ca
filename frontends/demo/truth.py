"""The ground truth: what the simulated store saw happen, kept apart from the audit.

The store hands every save it applies to ``GroundTruth.observe`` (under its lock, so in the
order saves really happened). From the documents themselves — never from the events — it
works out each field's transitions and names the anomalies in the terms of docs/contract.md §3,
so the detectors' findings can be scored against it one for one:

* lost_update — a write replaced a field value set by another write whose version it had
  not read (its base version is older than the version that set the value); a warning, not
  an error, when both writes left the same value;
* stale_overwrite — the value replaced came from newer data (older ``source_ts``), or the
  write set the field back to a value it held before, without having read the change; not
  when it left the value it replaced;
* version_conflict — two writes of one block produced the same version (a fork);
* priority_inversion — a less authoritative writer replaced a more authoritative writer's
  value within the priority window (the writer-priority rule); not when it left that value;
* chain_break — a write replaced a value other than the last one recorded (never happens
  here: every write goes through the one instrumented store);
* oscillation — among the changes that changed the value, a field returned to an earlier
  value (A→B→A) by another writer than the one it undoes, or writers took turns (W1, W2,
  W1) within the window.

An incident names the writes involved (write ids the writers chose), which is how it is
matched with a finding's witnesses.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from audit.config import Config
from frontends.demo.workspace import Save

DETECTORS = (
    "lost_update",
    "version_conflict",
    "stale_overwrite",
    "priority_inversion",
    "oscillation",
    "chain_break",
)
_ABSENT = object()


def leaves(doc: Any, path: str = "") -> dict[str, Any]:
    """Field path -> value for every scalar in ``doc`` (dotted, list indexes as numbers)."""
    if isinstance(doc, dict) and doc:
        out: dict[str, Any] = {}
        for key, value in doc.items():
            out.update(leaves(value, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(doc, list) and doc:
        out = {}
        for i, value in enumerate(doc):
            out.update(leaves(value, f"{path}.{i}" if path else str(i)))
        return out
    return {path or "$": doc}


def same(a: Any, b: Any) -> bool:
    """JSON equality, as the store compares canonical JSON text."""
    if a is _ABSENT or b is _ABSENT:
        return a is b
    return orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        b, option=orjson.OPT_SORT_KEYS
    )


@dataclass(frozen=True)
class Transition:
    """One field of one block changing in one applied save."""

    entity: str
    field: str
    old: Any
    new: Any
    writer: str
    actor: str
    write_id: str
    base_version: int
    version: int
    source_ts: float
    ts: float
    intended: bool  # the writer meant to change this field; False: its stale copy rode along
    position: int  # the save's position among the block's saves
    seen: int  # saves of the block the writer's copy reflected


@dataclass(frozen=True)
class Incident:
    """One anomaly that really happened: the unit findings are scored against."""

    detector: str
    entity: str
    field: str
    write_ids: tuple[str, ...]  # the writes involved, in commit order
    note: str = ""
    # the finding's severity when the detector sets it per finding (None: its usual one);
    # scored, but not part of what the incident is
    severity: str | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str, str, tuple[str, ...]]:
        return (self.detector, self.entity, self.field, self.write_ids)


@dataclass
class GroundTruth:
    """Fed every applied save, in commit order; works out the incidents on demand."""

    config: Config = field(default_factory=Config)
    transitions: dict[tuple[str, str], list[Transition]] = field(
        default_factory=lambda: defaultdict(list)
    )
    saves: int = 0
    _versions: dict[tuple[str, int], list[str]] = field(default_factory=lambda: defaultdict(list))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, save: Save) -> None:
        before, after = leaves(save.before), leaves(save.after)
        changed = [
            (path, before.get(path, _ABSENT), after.get(path, _ABSENT))
            for path in list(before) + [p for p in after if p not in before]
            if not same(before.get(path, _ABSENT), after.get(path, _ABSENT))
        ]
        with self._lock:
            self.saves += 1
            if not changed:
                return  # nothing changed: no transition, nothing the audit could see
            self._versions[(save.entity, save.version)].append(save.write_id)
            for path, old, new in changed:
                self.transitions[(save.entity, path)].append(
                    Transition(
                        save.entity, path, old, new, save.writer, save.actor, save.write_id,
                        save.base_version, save.version, save.source_ts, save.ts,
                        path in save.intended, save.position, save.seen,
                    )
                )

    def incidents(self) -> list[Incident]:
        with self._lock:
            out = _forks(self._versions)
            for history in self.transitions.values():
                out.extend(_pairs(history, self.config))
                out.extend(_oscillations(history, self.config))
            return out

    def unseen_overwrites(self) -> list[tuple[Transition, Transition]]:
        """Every (e1, e2) where e2 replaced a value its writer's copy did not reflect.

        What really happened, whatever the version numbers say: a superset of the lost
        updates, because after a version fork a copy can claim a version whose other
        branch it never saw (and the contract's rule, like any rule on versions, trusts it).
        """
        with self._lock:
            return [
                (e1, e2)
                for history in self.transitions.values()
                for e1, e2 in zip(history, history[1:], strict=False)
                if e1.actor != e2.actor and e1.position > e2.seen
            ]

    def hidden_by_forks(self) -> list[tuple[Transition, Transition]]:
        """The unseen overwrites that are not lost updates by the contract's rule: the
        writer's version number claimed a state whose other branch it never saw."""
        lost = {i.key for i in self.incidents() if i.detector == "lost_update"}
        return [
            (e1, e2)
            for e1, e2 in self.unseen_overwrites()
            if ("lost_update", e1.entity, e1.field, (e1.write_id, e2.write_id)) not in lost
        ]

    def forked(self, entity: str, version: int) -> bool:
        """Whether more than one write of ``entity`` produced ``version``."""
        with self._lock:
            return len(self._versions.get((entity, version), ())) > 1

    def clobbers(self) -> int:
        """Lost updates where the field only rode along in the writer's stale copy."""
        with self._lock:
            return sum(
                1
                for history in self.transitions.values()
                for e1, e2 in zip(history, history[1:], strict=False)
                if e1.write_id != e2.write_id and e2.base_version < e1.version and not e2.intended
            )


def _forks(versions: dict[tuple[str, int], list[str]]) -> list[Incident]:
    """Two or more writes that changed something produced one version of one block."""
    return [
        Incident("version_conflict", entity, "$", tuple(writes), f"version {version}")
        for (entity, version), writes in versions.items()
        if len(writes) > 1
    ]


def _pairs(history: list[Transition], config: Config) -> list[Incident]:
    """The detectors that judge a transition against the one before it (e1 = prev(e2))."""
    out = []
    prio = config.priority_of
    for i in range(1, len(history)):
        e1, e2 = history[i - 1], history[i]
        pair = (e1.entity, e1.field, (e1.write_id, e2.write_id))
        unseen = e2.base_version < e1.version
        convergent = same(e2.new, e1.new)  # nothing was replaced
        if e1.write_id != e2.write_id and unseen:
            note = "rode along in a stale copy" if not e2.intended else "concurrent change"
            severity = "warning" if convergent else "error"
            out.append(Incident("lost_update", *pair, note, severity))
        held_before = [history[0].old] + [h.new for h in history[: i - 1]]
        reverted = unseen and any(same(e2.new, value) for value in held_before)
        if not convergent and (e2.source_ts < e1.source_ts or reverted):
            note = "older data" if e2.source_ts < e1.source_ts else "reverted"
            out.append(Incident("stale_overwrite", *pair, note))
        if (
            not convergent
            and prio(e2.writer) < prio(e1.writer)
            and abs(e2.ts - e1.ts) < config.priority_window_s
        ):
            out.append(Incident("priority_inversion", *pair))
        if not same(e2.old, e1.new):
            out.append(Incident("chain_break", *pair))
    return out


def _oscillations(history: list[Transition], config: Config) -> list[Incident]:
    """Bursts of flips among the effective changes (a write that left the value the field
    already held is stepped over): a return to the value before (A→B→A) by another writer
    than the one it undoes, or a hand-back (W1, W2, W1).

    Flips whose spans overlap or touch form one burst, reported when it holds a return, or
    a hand-back and at least ``oscillation_min_changes`` changes.
    """
    window = config.oscillation_window_s
    changes = [  # (the change, the value the field held before it)
        (t, history[i - 1].new if i else t.old)
        for i, t in enumerate(history)
        if i == 0 or not same(t.new, history[i - 1].new)
    ]
    bursts: list[dict[str, Any]] = []
    for i in range(1, len(changes)):
        (e, _), (c1, c1_before) = changes[i], changes[i - 1]
        c2 = changes[i - 2][0] if i >= 2 else None
        if e.writer == c1.writer or abs(e.ts - c1.ts) > window:
            continue  # one writer undoing or redoing its own change is no conflict
        returned = same(e.new, c1_before)
        handed_back = c2 is not None and e.writer == c2.writer and abs(e.ts - c2.ts) <= window
        if not (returned or handed_back):
            continue
        start = i - 2 if handed_back else i - 1
        if bursts and start <= bursts[-1]["last"]:
            burst = bursts[-1]
        else:
            burst = {"first": start, "last": i, "returns": 0, "handbacks": 0}
            bursts.append(burst)
        burst["first"] = min(burst["first"], start)
        burst["last"] = i
        burst["returns"] += returned
        burst["handbacks"] += handed_back
    out = []
    for b in bursts:
        count = b["last"] - b["first"] + 1
        if b["returns"] or (b["handbacks"] and count >= config.oscillation_min_changes):
            members = [t for t, _ in changes[b["first"] : b["last"] + 1]]
            out.append(
                Incident("oscillation", history[0].entity, history[0].field,
                         tuple(m.write_id for m in members), f"{count} changes")
            )
    return out
