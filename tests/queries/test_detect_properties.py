"""Generated histories: a well-behaved one yields no finding; one injected anomaly yields it.

Well-behaved: versions advance one per write, each old value is the value before, writes of
an entity are far enough apart that nothing flaps and no priority rule can be broken. The
injection appends two or three writes to one field of one entity.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from detect_histories import ABSENT, ev, load
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.store import open_store
from queries.runner import DETECTORS, check

WRITERS = ["user", "workflow", "instantiation", "polling_sync", "ci-bot"]
FIELDS = ["content", "status", "indexingList.0.status", "indexingList.1", "名前.状態", "$"]
APART = 400  # seconds between writes of an entity: beyond every default window

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(blacklist_categories=("Cs",)), max_size=6),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


class History:
    """Events of a few entities, built write by write, remembering each field's value."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.state: dict[str, dict[str, Any]] = {}
        self.version: dict[str, int | None] = {}
        self.clock: dict[str, int] = {}

    def write(self, entity: str, writer: str, changes: dict[str, Any], *, dt: int = APART,
              base: int | None = None, version: int | None = None, olds: dict | None = None,
              **extra: Any) -> list[str]:
        """One write of ``changes`` (field -> new value, ABSENT = remove) at clock + dt."""
        self.clock[entity] += dt
        current = self.version[entity]
        versions = {}
        if current is not None or base is not None:
            base = current if base is None else base
            version = (current + 1) if version is None else version
            versions = {"base_version": base, "version": version}
            self.version[entity] = max(current or 0, version)
        write_id = f"{entity}/w{len(self.events)}"
        ids = []
        for field, new in changes.items():
            old = (olds or {}).get(field, self.state[entity].get(field, ABSENT))
            event_id = f"e{len(self.events)}"
            self.events.append(ev(event_id, self.clock[entity], entity, field, writer, old=old,
                                  new=new, write_id=write_id, **versions, **extra))
            ids.append(event_id)
            if new is ABSENT:
                self.state[entity].pop(field, None)
            else:
                self.state[entity][field] = new
        return ids


@st.composite
def histories(draw) -> History:
    h = History()
    for k in range(draw(st.integers(1, 3))):
        entity = draw(st.sampled_from(["block-", "workspace-", "ブロック-"])) + str(k)
        h.state[entity] = {}
        h.version[entity] = 0 if draw(st.booleans()) else None
        h.clock[entity] = draw(st.integers(0, 10_000))
        for _ in range(draw(st.integers(1, 6))):
            fields = draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3, unique=True))
            changes = {}
            for field in fields:
                current = h.state[entity].get(field, ABSENT)
                if current is not ABSENT and draw(st.integers(0, 9)) == 0:
                    changes[field] = ABSENT  # removed
                else:
                    changes[field] = draw(json_values.filter(lambda v, c=current: v != c))
            h.write(entity, draw(st.sampled_from(WRITERS)), changes)
    return h


def run_check(events: list[dict[str, Any]], *, whole_history: bool = False) -> list:
    """check() on a fresh store; ``whole_history`` also runs the detectors over every
    transition instead of the suspects only, and insists on the same findings."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "s.duckdb"
        load(db, events, seed=len(events))
        con = open_store(db, read_only=True)
        try:
            findings = check(con)
            if whole_history:
                whole = check(con, suspects_only=False)
                assert [f.to_dict() for f in whole] == [f.to_dict() for f in findings]
            return findings
        finally:
            con.close()


SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(histories())
def test_a_well_behaved_history_yields_no_finding(h):
    findings = run_check(h.events)
    assert findings == [], [f.message for f in findings]


def inject(h: History, detector: str, entity: str, field: str) -> None:
    """Append writes to ``field`` of ``entity`` that make ``detector`` fire (and end well)."""
    n = len(h.events)
    a, b, c = {"injected": n, "v": "A"}, {"injected": n, "v": "B"}, {"injected": n, "v": "C"}
    before = h.state[entity].get(field, ABSENT)
    versioned = h.version[entity] is not None
    if detector == "lost_update":
        h.write(entity, "workflow", {field: a})
        if versioned:  # read the version before a, wrote on top of it
            h.write(entity, "workflow", {field: b}, base=h.version[entity] - 1)
        else:  # read the value before a, like a did
            h.write(entity, "workflow", {field: b}, olds={field: before})
    elif detector == "stale_overwrite":
        h.write(entity, "workflow", {field: a}, source_t=h.clock[entity] + APART)
        h.write(entity, "workflow", {field: b}, source_t=h.clock[entity] - 100)
    elif detector == "oscillation":
        h.write(entity, "workflow", {field: a})
        # another writer puts back the value before, 10 s later
        h.write(entity, "user", {field: before}, dt=10)
    elif detector == "priority_inversion":
        h.write(entity, "user", {field: a})
        h.write(entity, "polling_sync", {field: b}, dt=10)
    elif detector == "version_conflict":
        h.write(entity, "workflow", {field: a}, base=90, version=91)
        h.write(entity, "workflow", {field: b}, base=90, version=91)
    elif detector == "chain_break":
        h.write(entity, "workflow", {field: a})
        h.write(entity, "workflow", {field: b}, olds={field: c})  # claims c was there
    else:
        raise AssertionError(detector)


@SETTINGS
@given(histories(), st.sampled_from(DETECTORS), st.data())
def test_one_injected_anomaly_is_found_on_its_field(h, detector, data):
    entity = data.draw(st.sampled_from(sorted(h.state)))
    field = data.draw(st.sampled_from(FIELDS))
    inject(h, detector, entity, field)
    findings = run_check(h.events, whole_history=True)
    hits = {(f.detector, f.entity, f.field) for f in findings}
    assert (detector, entity, field) in hits, [f.message for f in findings]
    # and nothing on the entities that were left alone
    assert {f.entity for f in findings} == {entity}


@st.composite
def crowded(draw) -> list[dict[str, Any]]:
    """A few fields written in quick succession by several writers, from few values: echoes
    of the value already there, returns, hand-backs, blind writes, stale reads."""
    events = []
    versioned = draw(st.booleans())
    version = 0
    for f in range(draw(st.integers(1, 2))):
        t, value = 0.0, ABSENT
        for n in range(draw(st.integers(2, 12))):
            t += draw(st.sampled_from([0, 1, 5, 30, 70, 130, 400]))
            old = draw(st.sampled_from([value, value, "a", ABSENT]))
            new = draw(st.sampled_from(["a", "b", None] + ([ABSENT] if old is not ABSENT
                                                           else [])))
            writer = draw(st.sampled_from(["user", "workflow", "polling_sync"]))
            read = version - draw(st.integers(0, 2)) if versioned else None
            version += 1
            event = ev(f"f{f}-{n}", t, "block", f"field{f}", writer, old=old, new=new,
                       base_version=read, version=version if versioned else None)
            if old is ABSENT and value is not ABSENT:
                event["change"] = "changed"  # a blind write
            events.append(event)
            value = new
    return events


@SETTINGS
@given(crowded())
def test_the_suspects_give_the_findings_the_whole_history_gives(events):
    run_check(events, whole_history=True)
