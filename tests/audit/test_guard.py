"""Compare-and-swap with recorded rejections, and the writer-priority rule."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest

import audit
from audit.config import Config
from audit.event import json_schema

pytestmark = pytest.mark.usefixtures("fresh_audit")


class Store:
    """A store that saves whole documents, guarded by compare-and-swap."""

    def __init__(self):
        self.docs: dict[str, dict] = {}

    def read(self, key):
        return copy.deepcopy(self.docs.get(key))

    def save(self, doc, **kw):
        events = audit.compare_and_swap(doc["id"], self.docs.get(doc["id"]), doc, **kw)
        self.docs[doc["id"]] = doc
        return events


def test_compare_and_swap_accepts_in_order_writes_and_stamps_versions(sink):
    store = Store()
    with audit.writer("instantiation"):
        store.save({"id": "b", "content": "old", "indexingList": []})
    doc = store.read("b")
    with audit.writer("workflow"):
        events = store.save({**doc, "content": "new"})
    assert [(e["field"], e["base_version"], e["version"]) for e in events] == [("content", 1, 2)]
    assert store.docs["b"]["_meta"]["version"] == 2
    assert store.docs["b"]["_meta"]["last_updated_by"] == "workflow"


def test_a_stale_write_is_refused_named_and_recorded_as_rejected(sink):
    store = Store()
    with audit.writer("user"):
        store.save({"id": "b", "content": "old", "indexingList": []})
    read_by_workflow, read_by_instantiation = store.read("b"), store.read("b")
    with audit.writer("workflow"):
        store.save({**read_by_workflow, "content": "new content"})
    read_by_instantiation["indexingList"] = [{"status": "done"}]
    with audit.writer("instantiation", actor="task-9"), pytest.raises(audit.ConflictError) as err:
        store.save(read_by_instantiation)

    e = err.value
    assert (e.entity, e.writer, e.expected_version, e.current_version, e.current_writer) == (
        "b", "instantiation", 1, 2, "workflow")
    assert "instantiation wrote from version 1" in str(e) and "workflow" in str(e)
    assert store.docs["b"]["content"] == "new content"  # nothing lost
    rejected = [ev for ev in sink.events if ev.get("attrs", {}).get("rejected")]
    assert rejected == e.events
    # what the refused write would have done, clobber included
    assert sorted((ev["field"], ev["change"]) for ev in rejected) == [
        ("content", "changed"), ("indexingList.0", "added")]
    for ev in rejected:
        assert ev["writer"] == "instantiation" and ev["actor"] == "task-9"
        assert ev["base_version"] == 1 and "version" not in ev
        assert ev["attrs"] == {"rejected": True, "current_version": 2, "current_writer": "workflow"}
        jsonschema.validate(ev, json_schema())

    retry = store.read("b")
    retry["indexingList"] = [{"status": "done"}]
    with audit.writer("instantiation"):
        events = store.save(retry)
    assert [(ev["field"], ev["base_version"], ev["version"]) for ev in events] == [
        ("indexingList.0", 2, 3)]


def test_versions_still_move_on_with_the_instrumentation_off(sink):
    audit.configure(enabled=False)
    store = Store()
    store.save({"id": "b", "a": 1})
    stale = store.read("b")
    store.save({**store.read("b"), "a": 2})
    assert store.docs["b"]["_meta"]["version"] == 2
    with pytest.raises(audit.ConflictError):
        store.save({**stale, "a": 3})
    assert sink.events == []


def test_explicit_expected_version_and_new_entities():
    store = Store()
    assert store.save({"id": "n", "a": 1}, expected_version=0)
    with pytest.raises(audit.ConflictError):
        store.save({"id": "n", "a": 2}, expected_version=0)


# --- the priority rule ----------------------------------------------------------------------------

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def test_priority_allows_follows_the_design_analysis_order():
    cfg = Config()
    recent = NOW - timedelta(seconds=10)
    assert audit.priority_allows("user", "workflow", last_at=recent, now=NOW, config=cfg)
    assert not audit.priority_allows("polling_sync", "user", last_at=recent, now=NOW, config=cfg)
    assert not audit.priority_allows("instantiation", "workflow", last_at=recent, now=NOW,
                                     config=cfg)
    assert audit.priority_allows("workflow", "workflow", last_at=recent, now=NOW, config=cfg)
    assert audit.priority_allows("workflow", None, config=cfg)
    # outside the window the higher priority no longer holds the field
    old = (NOW - timedelta(seconds=301)).isoformat()
    assert audit.priority_allows("polling_sync", "user", last_at=old, now=NOW, config=cfg)
    # unknown time of the last write: treated as recent
    assert not audit.priority_allows("polling_sync", "user", config=cfg)
    # explicit priorities win; unknown writers get the default
    assert audit.priority_allows("polling_sync", "user", priority=100, last_at=recent,
                                 now=NOW, config=cfg)
    assert not audit.priority_allows("cron", "instantiation", last_at=recent, now=NOW,
                                     config=cfg)


def test_priority_uses_the_configured_priorities():
    audit.configure(config=Config(writer_priorities={"polling_sync": 200, "user": 100}))
    assert audit.priority_allows("polling_sync", "user", last_at=NOW, now=NOW)


def test_merge_by_priority_keeps_fields_a_higher_priority_writer_owns(sink):
    audit.configure(field_stamps=True)
    stored = {"id": "b", "content": "old", "indexingList": [{"status": "processing"}]}
    with audit.writer("instantiation"):
        audit.record("b", None, stored)
    edited = copy.deepcopy(stored)
    edited["content"] = "typed by the user"
    with audit.writer("user"):
        audit.record("b", stored, edited)
    stored = edited
    assert audit.field_writer(stored, "content")[0] == "user"
    assert audit.field_writer(stored, "indexingList.0.status")[0] == "instantiation"

    # a polling sync brings stale content and a status update in one whole-document save
    incoming = copy.deepcopy(stored)
    incoming["content"] = "old"
    incoming["indexingList"][0]["status"] = "done"
    incoming["indexingList"].append({"status": "new"})
    merged, refused = audit.merge_by_priority(stored, incoming, writer="polling_sync")
    assert refused == ["content", "indexingList.0.status", "indexingList.1"]
    assert merged["content"] == "typed by the user"
    assert merged["indexingList"] == [{"status": "processing"}]

    incoming = copy.deepcopy(stored)
    incoming["content"] = "workflow output"
    merged, refused = audit.merge_by_priority(stored, incoming, writer="user")
    assert refused == [] and merged["content"] == "workflow output"


def test_merge_by_priority_finds_keyed_elements_wherever_they_stand(sink):
    """Nodes keyed by id: the user's edit of one node is kept, the sync's removal of
    another is refused and the node comes back, a node the sync added after the user's
    whole-list write is taken back out; moving nodes around is no change at all."""
    audit.configure(field_stamps=True)
    stored = {"id": "ws", "nodes": [{"id": "a", "text": "x"}, {"id": "b]1", "text": "y"}]}
    with audit.writer("user"):
        audit.record("ws", None, stored)
    edited = copy.deepcopy(stored)
    edited["nodes"][0]["text"] = "typed"
    with audit.writer("user"):
        audit.record("ws", stored, edited)
    assert audit.field_writer(edited, "nodes[a].text")[0] == "user"
    assert audit.field_writer(edited, "nodes")[0] == "user"  # a child path covers it

    incoming = copy.deepcopy(edited)
    incoming["nodes"] = [{"id": "c", "text": "new"}, {"id": "a", "text": "x"}]  # b]1 gone
    merged, refused = audit.merge_by_priority(edited, incoming, writer="polling_sync")
    assert sorted(refused) == ["nodes[a].text", "nodes[b\\]1]", "nodes[c]"]
    assert merged["nodes"] == [{"id": "a", "text": "typed"}, {"id": "b]1", "text": "y"}]
