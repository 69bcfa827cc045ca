"""Shared by the instrumentation tests: a sink that keeps what it is given, and the worker
of the multi-process spool tests. The fixtures built on them are in conftest.py.
"""

from __future__ import annotations

import threading
from typing import Any

import orjson
from hypothesis import strategies as st

import audit


class ListSink:
    """Keeps each event dict; thread-safe."""

    name = "list"

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(dict(event))

    def fields(self) -> list[str]:
        return [e["field"] for e in self.events]


def list_sink() -> ListSink:
    """A `ListSink` configured as the only sink, without OpenTelemetry."""
    s = ListSink()
    audit.configure(sink=s, otel=False)
    return s


def spool_writer(directory: str, writer: str, n: int, configure: bool) -> None:
    """A process's work in the multi-process spool tests: ``n`` tracked writes as ``writer``.

    ``configure=False`` uses the spool sink inherited from a forked parent.
    """
    if configure:
        from collectors.spool import SpoolSink

        audit.configure(sink=SpoolSink(directory), otel=False)

    @audit.tracked(entity_type="block")
    def apply(doc, i):
        doc["content"] = f"{writer}-{i}"
        doc["seq"] = i

    doc = {"id": f"block-{writer}", "_meta": {"version": 0}}  # versioned, as a store hands it out
    with audit.writer(writer):
        for i in range(n):
            apply(doc, i)


# --- random JSON documents, and edited copies of them ------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-3, max_value=3)
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(alphabet="abcdef", min_size=1, max_size=3), children, max_size=4),
    max_leaves=25,
)
json_docs = st.dictionaries(st.text(alphabet="abcdef", min_size=1, max_size=3), json_values)


@st.composite
def doc_pairs(draw):
    """A document and an edited copy (small, realistic diffs), or two unrelated ones."""
    old = draw(json_docs)
    if draw(st.booleans()):
        return old, draw(json_docs)
    new = orjson.loads(orjson.dumps(old))
    for _ in range(draw(st.integers(0, 4))):
        target, key = _random_slot(draw, new)
        if target is None:
            break
        action = draw(st.sampled_from(["set", "delete", "add"]))
        if isinstance(target, dict):
            if action == "delete" and key in target:
                del target[key]
            else:
                target[key] = draw(json_values)
        elif action == "delete" and target:
            target.pop()
        elif action == "add" or not target:
            target.append(draw(json_values))
        else:
            target[key % len(target)] = draw(json_values)
    return old, new


def _random_slot(draw, doc):
    node, key = doc, None
    for _ in range(draw(st.integers(0, 3))):
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        containers = [(k, v) for k, v in children if isinstance(v, dict | list)]
        if not containers:
            break
        k, v = draw(st.sampled_from(containers))
        node = v
    if isinstance(node, dict):
        key = draw(st.sampled_from(sorted(node) or ["zz"]) if node else st.just("zz"))
    else:
        key = draw(st.integers(0, 5))
    return node, key
