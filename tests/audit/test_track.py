"""Tracking writes: events per changed field, stamps and versions, failing open."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import threading
from datetime import datetime

import attrs
import jsonschema
import orjson
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from instrument_support import ListSink, doc_pairs, list_sink

import audit
from audit.config import Config
from audit.diff import MISSING, diff, patch
from audit.emit import render
from audit.event import json_schema
from audit.track import _spliced
from collectors.ingest import load_lines
from queries.runner import check

pytestmark = pytest.mark.usefixtures("fresh_audit")


def block(**extra):
    return {"id": "block-A", "content": "old", "indexingList": [{"status": "processing"}], **extra}


def test_one_event_per_changed_field_sharing_a_write_id(sink):
    @audit.tracked(entity_type="block")
    def apply(doc):
        doc["content"] = "new"
        doc["indexingList"][0]["status"] = "done"
        doc["indexingList"].append({"status": "queued"})

    doc = block()
    with audit.writer("workflow", actor="engine-1"):
        assert apply(doc) is None
    events = sink.events
    assert [(e["field"], e["change"]) for e in events] == [
        ("content", "changed"),
        ("indexingList.0.status", "changed"),
        ("indexingList.1", "added"),
    ]
    assert events[0]["old"] == "old" and events[0]["new"] == "new"
    assert "old" not in events[2] and events[2]["new"] == {"status": "queued"}
    assert len({e["write_id"] for e in events}) == 1
    assert len({e["event_id"] for e in events}) == 3
    for e in events:
        assert e["event"] == "field.transition"
        assert (e["entity"], e["entity_type"], e["writer"], e["actor"]) == (
            "block-A", "block", "workflow", "engine-1")
        assert "version" not in e and "base_version" not in e  # the document had none
        jsonschema.validate(e, json_schema())
    meta = doc["_meta"]
    assert meta["last_updated_by"] == "workflow"
    assert "version" not in meta
    assert meta["last_updated_at"] == events[0]["ts"]
    assert meta["write_id"] == events[0]["write_id"]


@pytest.mark.parametrize(("versions", "stamp", "first_base"), [
    ("auto", {"version": 0}, 0),  # a document that carries a version
    ("always", None, None),  # a document that carries none, versions asked for
])
def test_versions_count_writes_and_base_version_is_the_version_read(
    sink, versions, stamp, first_base
):
    audit.configure(versions=versions)

    @audit.tracked
    def set_content(doc, value):
        doc["content"] = value

    doc = block(**({"_meta": stamp} if stamp else {}))
    for i in range(3):
        set_content(doc, f"v{i}")
    assert [(e.get("base_version"), e["version"]) for e in sink.events] == [
        (first_base, 1), (1, 2), (2, 3)]
    assert doc["_meta"]["version"] == 3


def test_a_document_without_a_version_gets_none_claimed(sink):
    @audit.tracked
    def set_content(doc, value):
        doc["content"] = value

    doc = block()
    for i in range(3):
        set_content(doc, f"v{i}")
    assert [("base_version" in e, "version" in e) for e in sink.events] == [(False, False)] * 3
    assert "version" not in doc["_meta"] and doc["_meta"]["last_updated_by"] == "unknown"
    with pytest.raises(ValueError, match="versions must be one of"):
        audit.configure(versions="sometimes")


def test_a_write_that_changes_nothing_emits_nothing_and_keeps_the_version(sink):
    @audit.tracked
    def noop(doc):
        doc["content"] = doc["content"]
        return doc

    doc = block(_meta={"version": 7, "last_updated_by": "user"})
    noop(doc)
    assert sink.events == []
    assert doc["_meta"] == {"version": 7, "last_updated_by": "user"}


def test_returned_document_is_the_one_stamped_and_input_is_untouched(sink):
    @audit.tracked(entity=lambda d: d["id"])
    def with_content(doc, value):
        return {**doc, "content": value}

    doc = block()
    out = with_content(doc, "x")
    assert out["content"] == "x" and out["_meta"]["write_id"] == sink.events[0]["write_id"]
    assert "_meta" not in doc
    assert [e["field"] for e in sink.events] == ["content"]


def test_the_metadata_key_is_configurable_and_never_diffed(sink):
    audit.configure(meta_key="audit_meta")

    @audit.tracked
    def edit(doc):
        doc["content"] = "x"
        doc["audit_meta"]["note"] = "touched by the function itself"

    doc = block(audit_meta={"version": 4})
    edit(doc)
    assert [e["field"] for e in sink.events] == ["content"]
    assert sink.events[0]["base_version"] == 4
    assert doc["audit_meta"]["version"] == 5
    assert "_meta" not in doc


def test_exception_in_the_write_records_nothing_and_propagates(sink):
    @audit.tracked
    def broken(doc):
        doc["content"] = "half-done"
        raise ValueError("boom")

    doc = block()
    with pytest.raises(ValueError, match="boom"):
        broken(doc)
    assert sink.events == []
    assert "_meta" not in doc


def test_async_function_is_tracked(sink):
    @audit.tracked(entity_type="block")
    async def fetch_and_apply(doc):
        await asyncio.sleep(0)
        doc["indexingList"][0]["status"] = "done"
        return doc

    doc = asyncio.run(fetch_and_apply(block(_meta={"version": 4})))
    assert sink.fields() == ["indexingList.0.status"]
    assert doc["_meta"]["version"] == 5


def test_method_finds_the_document_after_self(sink):
    class Service:
        @audit.tracked(entity_type="block")
        def apply(self, doc, value):
            doc["content"] = value

        @audit.tracked(doc="target")
        def other(self, value, target):
            target["content"] = value

    svc = Service()
    svc.apply(block(), "a")
    svc.other("b", target=block())
    assert [e["new"] for e in sink.events] == ["a", "b"]


# --- documents that are objects -------------------------------------------------------------


@dataclasses.dataclass
class DataBlock:
    id: str
    content: str
    tags: list[str] = dataclasses.field(default_factory=list)


@attrs.define
class AttrsBlock:
    id: str
    content: str
    _meta: dict | None = None


class ModelBlock(pydantic.BaseModel):
    id: str
    content: str
    indexingList: list[dict] = []
    _meta: dict | None = pydantic.PrivateAttr(default=None)


@pytest.mark.parametrize(
    "make",
    [
        lambda: DataBlock("block-A", "old"),
        lambda: AttrsBlock("block-A", "old"),
        lambda: ModelBlock(id="block-A", content="old"),
    ],
    ids=["dataclass", "attrs", "pydantic"],
)
def test_object_documents_are_diffed_and_stamped(sink, make):
    @audit.tracked(entity_type="block")
    def edit(doc):
        doc.content = "new"
        return doc

    doc = make()
    with audit.writer("user"):
        edit(doc)
        edit(doc)  # no change: no event
    assert [(e["field"], e["old"], e["new"]) for e in sink.events] == [("content", "old", "new")]
    assert doc._meta["last_updated_by"] == "user" and "version" not in doc._meta


def test_object_that_cannot_carry_a_stamp_still_emits(sink):
    @attrs.define  # slotted, no _meta attribute
    class Slotted:
        id: str
        content: str

    @audit.tracked
    def edit(doc):
        doc.content = "new"

    edit(Slotted("s-1", "old"))
    assert sink.fields() == ["content"]
    assert audit.stats()["sinks"]["stamp"]["errors"] == 1


# --- the context manager and the store-side record ---------------------------------------------


def test_tracking_block(sink):
    doc = block()
    with audit.writer("user"):
        t = audit.tracking(doc, entity="block-A", entity_type="block")
        with t as d:
            d["content"] = "typed by a person"
    assert sink.fields() == ["content"]
    assert t.events[0]["writer"] == "user"
    assert doc["_meta"]["write_id"] == t.events[0]["write_id"]

    with pytest.raises(RuntimeError), audit.tracking(doc) as d:
        d["content"] = "abandoned"
        raise RuntimeError
    assert len(sink.events) == 1


def test_record_catches_a_whole_document_save_reverting_another_writers_field(sink):
    """A lost update: both read v1; workflow saves content; instantiation
    then saves its whole copy, which still has the old content."""
    store = {"block-A": {"id": "block-A", "content": "old", "indexingList": [],
                         "_meta": {"version": 1}}}

    def save(doc):
        audit.record(doc["id"], store.get(doc["id"]), doc, entity_type="block")
        store[doc["id"]] = doc

    read_by_workflow = {**store["block-A"]}
    read_by_instantiation = {**store["block-A"], "indexingList": []}
    with audit.writer("workflow"):
        read_by_workflow["content"] = "new content"
        save(read_by_workflow)
    with audit.writer("instantiation"):
        read_by_instantiation["indexingList"] = [{"status": "done"}]
        save(read_by_instantiation)

    wf, inst = [e for e in sink.events if e["writer"] == "workflow"], [
        e for e in sink.events if e["writer"] == "instantiation"]
    assert [(e["field"], e["new"], e["base_version"], e["version"]) for e in wf] == [
        ("content", "new content", 1, 2)]
    reverted = next(e for e in inst if e["field"] == "content")
    assert (reverted["old"], reverted["new"]) == ("new content", "old")
    assert (reverted["base_version"], reverted["version"]) == (1, 3)  # read v1, v2 unseen
    assert store["block-A"]["_meta"]["version"] == 3


@pytest.mark.parametrize(("versions", "conflicts"), [("always", 1), ("auto", 0)])
def test_copies_rebuilt_without_a_stamp_give_no_false_version_conflict(
    sink, con, versions, conflicts
):
    """The engine rebuilds its copy of a block for every task from the stored fields, so the
    copy carries no stamp. Two correct runs one after the other: claiming version 1 for each
    ("always", the old default) makes them a fork; unversioned ("auto") they are none."""
    audit.configure(versions=versions)

    @audit.tracked(entity_type="block")
    def run_task(block, output):
        block["content"] = output
        block["status"] = "done"

    stored = {"id": "block-A", "content": "template", "status": "idle"}
    for output in ("run 1", "run 2"):
        fresh = {key: value for key, value in stored.items() if key != "_meta"}
        with audit.writer("workflow"):
            run_task(fresh, output)
        stored = fresh
    assert load_lines(con, [render(e) for e in sink.events], "test").ingested == 3
    found = check(con, config=Config())
    assert [f.detector for f in found] == ["version_conflict"] * conflicts


def test_record_continues_a_stored_version_and_claims_none_without_one(sink):
    assert "version" not in audit.record("e-1", None, {"a": 1})[0]
    assert "version" not in audit.record("e-1", {"a": 1}, {"a": 2})[0]
    stored = {"a": 2, "_meta": {"version": 7}}
    (event,) = audit.record("e-1", stored, {"a": 3})
    assert "base_version" not in event and event["version"] == 8
    (event,) = audit.record("e-1", {"a": 3}, {"a": 4, "_meta": {"version": 8}})
    assert (event["base_version"], event["version"]) == (8, 9)


def test_record_creation_and_deletion(sink):
    events = audit.record("e-1", None, {"a": 1, "b": {"c": 2}})
    assert [(e["field"], e["change"]) for e in events] == [("a", "added"), ("b", "added")]
    events = audit.record("e-1", {"a": 1}, None)
    assert [(e["field"], e["change"], e["old"]) for e in events] == [("a", "removed", 1)]


def test_record_explicit_versions_source_ts_write_id_and_attrs(sink):
    events = audit.record(
        "e-1", {"a": 1}, {"a": 2, "b": 3}, base_version=4, version=9,
        source_ts="2025-01-01T00:00:00Z", write_id="w-1", attrs={"sse_seq": 12},
        stamp=False,
    )
    for e in events:
        assert (e["base_version"], e["version"], e["write_id"]) == (4, 9, "w-1")
        assert e["source_ts"] == "2025-01-01T00:00:00Z" and e["attrs"] == {"sse_seq": 12}


def test_annotate_and_source_ts_callable(sink):
    @audit.tracked(source_ts=lambda d: d["updated_at"])
    def apply_sse(doc, event):
        doc.update(event)

    @audit.tracked
    def apply_polled(doc, polled):
        doc["status"] = polled["status"]
        audit.annotate(source_ts=polled["produced_at"], attrs={"poll": 3})

    doc = {"id": "b"}
    apply_sse(doc, {"content": "x", "updated_at": "2025-01-01T00:00:01+00:00"})
    apply_polled(doc, {"status": "error", "produced_at": "2025-01-01T00:00:00+00:00"})
    by_field = {e["field"]: e for e in sink.events}
    assert by_field["content"]["source_ts"] == "2025-01-01T00:00:01+00:00"
    assert by_field["status"]["source_ts"] == "2025-01-01T00:00:00+00:00"
    assert by_field["status"]["attrs"] == {"poll": 3}
    audit.annotate(source_ts="ignored outside a tracked write")


# --- redaction --------------------------------------------------------------------------------


def test_naive_timestamps_at_the_python_api_are_utc(sink, con):
    @audit.tracked
    def apply_polled(doc, polled):
        doc["status"] = polled["status"]
        audit.annotate(source_ts=polled["produced_at"])

    apply_polled({"id": "b"}, {"status": "done", "produced_at": "2025-05-01T10:00:00"})
    audit.record("c", {"a": 1}, {"a": 2}, source_ts="2025-05-01 10:00:00.5")
    audit.record("d", {"a": 1}, {"a": 2}, source_ts="2025-05-01T12:00:00+02:00")  # kept
    audit.record("e", {"a": 1}, {"a": 2}, source_ts=datetime(2025, 5, 1, 10))
    assert [e["source_ts"] for e in sink.events] == [
        "2025-05-01T10:00:00+00:00", "2025-05-01T10:00:00.500000+00:00",
        "2025-05-01T12:00:00+02:00", "2025-05-01T10:00:00+00:00"]
    assert load_lines(con, [render(e) for e in sink.events], "api").rejected == 0
    # The ingest stays strict: a line that says no offset is refused, with its reason.
    naive = {**sink.events[0], "event_id": "naive", "source_ts": "2025-05-01T10:00:00"}
    assert load_lines(con, [render(naive)], "file").rejected == 1


def test_redacted_fields_are_hashed_and_equal_values_stay_equal(sink):
    audit.configure(redact=("content",))
    audit.record("b", {"content": "secret", "n": 1}, {"content": "other", "n": 2})
    audit.record("b", {"content": "other"}, {"content": "secret"})
    audit.record("b", {}, {"nested": {"content": "secret", "keep": 1}})
    first, n, second, nested = sink.events
    assert set(first["old"]) == {"sha256", "len"} and first["old"]["len"] == 6
    assert first["new"] == second["old"] and first["old"] == second["new"]
    assert n["new"] == 2
    assert nested["new"]["keep"] == 1 and nested["new"]["content"] == first["old"]
    assert "secret" not in repr(sink.events)


def test_redacting_a_keyed_list_covers_its_elements(sink):
    audit.configure(redact=("nodes",))
    before = {"nodes": [{"id": "a", "text": "secret"}]}
    audit.record("ws", before, {"nodes": [{"id": "a", "text": "other secret"}]})
    audit.record("ws", before, {"nodes": []})
    assert [e["field"] for e in sink.events] == ["nodes[a].text", "nodes[a]"]
    assert "secret" not in repr(sink.events)


# --- failing open -----------------------------------------------------------------------------


def test_a_failing_sink_never_breaks_the_write(caplog):
    good = ListSink()

    def disk_full(event):
        raise OSError(28, "No space left on device")

    audit.configure(sink=[disk_full, good], otel=False)

    @audit.tracked
    def edit(doc, value):
        doc["content"] = value
        return "service result"

    doc = block(_meta={"version": 0})
    with caplog.at_level(logging.WARNING, logger="audit"):
        results = [edit(doc, f"v{i}") for i in range(5)]
    assert results == ["service result"] * 5
    assert doc["content"] == "v4" and doc["_meta"]["version"] == 5
    assert len(good.events) == 5
    stats = audit.stats()
    assert stats["events"] == 5
    assert stats["sinks"]["disk_full"]["dropped"] == 5
    assert stats["sinks"]["disk_full"]["reasons"] == {"OSError": 5}
    assert stats["sinks"]["list"] == {
        "sent": 5, "dropped": 0, "errors": 0, "reasons": {}, "last_error": None}
    warnings = [r for r in caplog.records if r.name == "audit"]
    assert len(warnings) == 1 and "disk_full" in warnings[0].getMessage()


def test_a_first_failure_that_lost_nothing_does_not_hide_the_first_lost_event(caplog):
    class Flaky:
        """A sink whose flush fails (nothing lost), then whose writes fail (events lost)."""

        name = "flaky"

        def __call__(self, event):
            raise OSError(28, "No space left on device")

        def flush(self):
            raise OSError(5, "Input/output error")

    audit.configure(sink=Flaky(), otel=False)
    with caplog.at_level(logging.WARNING, logger="audit"):
        audit.flush()
        for i in range(3):
            audit.record("e", {"n": i}, {"n": i + 1})
        audit.flush()
    told = [r.getMessage() for r in caplog.records if r.name == "audit"]
    assert len(told) == 2, told
    assert told[0].startswith("audit: flaky failed, no event lost (OSError: ")
    assert told[1].startswith("audit: flaky failed and dropped 1 event(s) (OSError: ")
    stats = audit.stats()["sinks"]["flaky"]
    assert (stats["dropped"], stats["errors"]) == (3, 5)

def test_unserialisable_values_and_failing_processors_are_counted_not_raised():
    lines = []

    class LineSink:
        name = "lines"

        def write_line(self, line):
            lines.append(line)

    def broken_processor(_logger, _name, event):
        if event["field"] == "bad":
            raise RuntimeError("processor bug")
        return event

    audit.configure(sink=LineSink(), processors=[broken_processor], otel=False)
    assert audit.record("e", {}, {"bad": 1, "good": {1, 2}}) != []
    assert len(lines) == 1 and b'"good"' in lines[0] and b"[1,2]" in lines[0]
    assert audit.stats()["sinks"]["pipeline"]["dropped"] == 1


def test_a_document_argument_that_is_missing_does_not_break_the_call():
    audit.configure(sink=ListSink())

    @audit.tracked(doc="doc")
    def f(**kwargs):
        return "ran"

    assert f(other=1) == "ran"
    assert audit.stats()["sinks"]["instrumentation"]["errors"] == 1


def test_disabled_instrumentation_is_a_plain_call(sink):
    audit.configure(enabled=False)

    @audit.tracked
    def edit(doc):
        doc["content"] = "x"

    doc = block()
    edit(doc)
    assert sink.events == [] and "_meta" not in doc


# --- the tracker's shortcuts agree with the exact diff ------------------------------------------


@settings(max_examples=200, deadline=None)
@given(doc_pairs())
def test_tracked_writes_report_exactly_the_diff(pair):
    """The tracker skips unchanged containers on == and checks its result only where
    booleans occur; on random edits (booleans and numbers swapped included) it must report
    what the exact diff reports."""
    old, new = pair
    sink = list_sink()

    @audit.tracked(entity="e")
    def replace_all(doc):
        doc.clear()
        doc.update(copy.deepcopy(new))

    replace_all(copy.deepcopy(old))
    expected = diff(old, new)
    got = [(e["field"], e["change"], e.get("old", MISSING), e.get("new", MISSING))
           for e in sink.events]
    assert _canon(got) == _canon(expected)


def _canon(changes):
    return sorted(
        (f, c, orjson.dumps(o) if o is not MISSING else b"", orjson.dumps(n) if n is not MISSING
         else b"") for f, c, o, n in changes
    )


@pytest.mark.parametrize("old_status", ["unique", "shared"])
def test_a_boolean_turned_number_next_to_a_real_change_is_reported(sink, old_status):
    """``True == 1`` hides the flag's change from the quick diff; the check of its result
    (text spliced where the old value's text is unique, the state patched where it is not)
    must find it, and the exact diff report both changes."""
    shared = old_status == "shared"

    @audit.tracked(entity="e")
    def edit(doc):
        doc["status"] = "done"
        doc["flags"]["on"] = 1

    edit({"status": old_status, "other": "shared" if shared else "x", "flags": {"on": True}})
    assert [(e["field"], e.get("old"), e["new"]) for e in sink.events] == [
        ("status", old_status, "done"), ("flags.on", True, 1)]


def test_a_nan_or_infinity_left_as_it_was_is_no_change(sink):
    """Both are null in the document's JSON: the quick diff saw null, the exact diff the float,
    and reported 'changed null -> null' beside each real change."""
    @audit.tracked(entity="e")
    def edit(doc, **update):
        doc.update(update)

    doc = {"score": float("nan"), "ceiling": float("inf"), "n": 1}
    edit(doc, n=2)
    edit(doc, score=0.5)
    assert [(e["field"], e.get("old"), e["new"]) for e in sink.events] == [
        ("n", 1, 2), ("score", None, 0.5)]


# Scalars whose JSON texts occur inside one another and inside keys: 1 in 10, in "1", in 1.5.
_leaves = st.sampled_from([1, 10, 1.5, "1", "a", "a1", True, None])
_documents = st.dictionaries(
    st.sampled_from(["a", "1", "10", "true"]),
    st.recursive(_leaves, lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.sampled_from(["a", "1"]), inner, max_size=3), max_leaves=8),
    min_size=1, max_size=4,
)


def _some_leaves_replaced(value, draw):
    if isinstance(value, dict):
        return {k: _some_leaves_replaced(v, draw) for k, v in value.items()}
    if isinstance(value, list):
        return [_some_leaves_replaced(v, draw) for v in value]
    return draw(_leaves) if draw(st.booleans()) else value


@settings(max_examples=300, deadline=None)
@given(_documents, st.data())
def test_the_spliced_text_is_the_patched_state_as_json(before, data):
    """Where the tracker's check splices old values' texts (audit/track.py `_spliced`), the
    text is the one patching the state would give: a text found once in the state before is
    the changed field's own, never a piece of a key or of a longer number or string."""
    before_json = orjson.dumps(before)
    after = _some_leaves_replaced(before, data.draw)
    changes = diff(orjson.loads(before_json), after, booleans=False)
    spliced = _spliced(before_json, changes)
    if spliced is not None:
        assert spliced == orjson.dumps(patch(orjson.loads(before_json), changes))


flags = st.fixed_dictionaries({"on": st.booleans() | st.integers(0, 1), "n": st.integers(0, 2)})
keyed_nodes = st.lists(st.fixed_dictionaries({"id": st.sampled_from("abcde"), "f": flags}),
                       max_size=5, unique_by=lambda n: n["id"])


@settings(max_examples=150, deadline=None)
@given(keyed_nodes, keyed_nodes, st.booleans())
def test_tracked_writes_on_keyed_lists_report_exactly_the_diff(old, new, exclude):
    """The same on lists keyed by id, where booleans and 1/0 swap inside elements that move:
    the tracker's check patches by key and falls back to the exact diff when it must."""
    audit.reset()
    sink = list_sink()
    rules = {"exclude": ["nodes[*].f.n"]} if exclude else {}
    audit.configure(**rules)

    @audit.tracked(entity="ws")
    def replace_nodes(doc):
        doc["nodes"] = copy.deepcopy(new)

    replace_nodes({"nodes": copy.deepcopy(old)})
    expected = diff({"nodes": old}, {"nodes": new}, **rules)
    got = [(e["field"], e["change"], e.get("old", MISSING), e.get("new", MISSING))
           for e in sink.events]
    assert _canon(got) == _canon(expected)


# --- concurrency ------------------------------------------------------------------------------


def test_stamps_and_versions_are_right_after_concurrent_writes(sink):
    """Eight threads do read-modify-write on one stored document under the store's lock:
    every write gets its own version, each write's base is the previous write's version."""
    store = {"id": "block-A", "counter": 0, "_meta": {"version": 0}}
    lock = threading.Lock()

    @audit.tracked(entity_type="block")
    def bump(doc, who):
        doc["counter"] += 1
        doc["last"] = who

    def worker(i):
        with audit.writer("user" if i % 2 else "workflow", actor=str(i)):
            for _ in range(25):
                with lock:
                    bump(store, i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    counter_events = [e for e in sink.events if e["field"] == "counter"]
    assert len(counter_events) == 200
    assert sorted(e["version"] for e in counter_events) == list(range(1, 201))
    for e in counter_events:
        assert e.get("base_version", 0) == e["version"] - 1
        assert e["new"] == e["version"]
    assert store["_meta"]["version"] == 200 == store["counter"]
    last = max(counter_events, key=lambda e: e["version"])
    assert store["_meta"]["last_updated_by"] == last["writer"]
    assert store["_meta"]["write_id"] == last["write_id"]


# --- keyed lists and excluded fields in tracked writes --------------------------------------------


def workspace() -> dict:
    return {"id": "ws-1", "_meta": {"version": 3}, "nodes": [
        {"id": f"block-{c}", "position": {"x": i, "y": 0}, "data": {"content": c, "dirty": False}}
        for i, c in enumerate("ABC")]}


def test_deleting_a_node_is_one_event_and_moving_one_none(sink):
    @audit.tracked(entity_type="workspace")
    def edit(ws, change):
        change(ws["nodes"])

    ws = workspace()
    edit(ws, lambda nodes: nodes.pop(0))
    edit(ws, lambda nodes: nodes.reverse())  # a re-order: no change, no version
    edit(ws, lambda nodes: nodes[0]["data"].update(content="c2", dirty=True))
    assert [(e["field"], e["change"], e["version"]) for e in sink.events] == [
        ("nodes[block-A]", "removed", 4),
        ("nodes[block-C].data.content", "changed", 5),
        ("nodes[block-C].data.dirty", "changed", 5),
    ]
    assert ws["_meta"]["version"] == 5


def test_excluded_fields_emit_nothing_and_never_bump_a_version(sink):
    audit.configure(exclude=["nodes[*].position", "*.dirty"])

    @audit.tracked(entity_type="workspace")
    def drag(ws, x):
        ws["nodes"][1]["position"]["x"] = x
        ws["nodes"][1]["data"]["dirty"] = True

    @audit.tracked(entity_type="workspace")
    def add(ws):
        ws["nodes"].append({"id": "block-D", "position": {"x": 9, "y": 9}, "data": {"dirty": 1}})

    ws = workspace()
    drag(ws, 40)
    assert sink.events == [] and ws["_meta"] == {"version": 3}
    add(ws)
    assert [(e["field"], e["new"]) for e in sink.events] == [
        ("nodes[block-D]", {"id": "block-D", "data": {}})]
    with pytest.raises(TypeError, match="not a path pattern"):
        audit.configure(exclude=[3])
    assert audit.settings.current().exclude == ("nodes[*].position", "*.dirty")
