// record(): docs/contract.md §7 — one §1 event per changed field, against what the writer read,
// never an exception into the application.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Auditor } from "../dist/index.js";

/** A sink keeping what it is given, as the sinks of the package get it. */
function memory() {
  return {
    name: "memory", lines: [], events: [],
    attach() {}, async flush() {}, async close() {},
    write(events, lines) { this.events.push(...events); this.lines.push(...lines); },
  };
}

test("a write gives one event per changed field, sharing a write id, in the contract's format", () => {
  const sink = memory();
  const audit = new Auditor({ sinks: [sink], service: "web" });
  const events = audit.record({
    entity: "block-A", entityType: "block", writer: "user", actor: "u-7",
    before: { data: { content: "a", status: "idle" }, tags: ["x"] },
    after: { data: { content: "b", status: "idle" }, tags: ["x", "y"] },
    baseVersion: 3, sourceTs: Date.UTC(2025, 0, 31, 12), writeId: "w-1",
  });
  assert.equal(events.length, 2);
  const [content, tag] = events.sort((x, y) => x.field.localeCompare(y.field));
  assert.deepEqual(
    { ...content, event_id: undefined, ts: undefined },
    {
      event: "field.transition", event_id: undefined, ts: undefined, entity: "block-A", entity_type: "block",
      field: "data.content", change: "changed", old: "a", new: "b", writer: "user", actor: "u-7",
      write_id: "w-1", base_version: 3, version: 4, source_ts: "2025-01-31T12:00:00.000Z",
      attrs: { "service.name": "web" },
    },
  );
  assert.deepEqual([tag.field, tag.change, tag.new, "old" in tag], ["tags.1", "added", "y", false]);
  assert.match(content.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  assert.match(content.event_id, /^[0-9a-f]{32}$/);
  assert.notEqual(content.event_id, tag.event_id);
  assert.deepEqual(sink.lines.map((l) => JSON.parse(l)), sink.events);
  assert.equal(audit.stats().events, 2);
});

test("a stale read shows in old: the value the writer read, not the current one", () => {
  const sink = memory();
  const audit = new Auditor({ sinks: [sink] });
  const read = { status: "processing" };
  // Another writer set "done" meanwhile; this one writes "failed" over what it read.
  const [event] = audit.record({ entity: "e", writer: "user", before: read, after: { status: "failed" } });
  assert.equal(event.old, "processing");
});

test("no change, no event; a new entity's fields are added, a deleted one's removed", () => {
  const audit = new Auditor({ sinks: [memory()] });
  assert.deepEqual(audit.record({ entity: "e", writer: "w", before: { a: 1 }, after: { a: 1.0 } }), []);
  const created = audit.record({ entity: "e", writer: "w", before: undefined, after: { a: 1 } });
  assert.deepEqual(created.map((e) => [e.field, e.change, e.new]), [["a", "added", 1]]);
  const deleted = audit.record({ entity: "e", writer: "w", before: { a: 1 }, after: null });
  assert.deepEqual(deleted.map((e) => [e.field, e.change, e.old]), [["a", "removed", 1]]);
});

test("writer: the write's own, else the scope's, else the default", () => {
  let scope;
  const audit = new Auditor({ sinks: [memory()], writer: "web", currentWriter: () => scope });
  const write = (w) => audit.record({ entity: "e", before: { a: 1 }, after: { a: 2 }, ...w })[0];
  assert.equal(write({}).writer, "web");
  scope = { writer: "workflow", actor: "engine-1" };
  assert.deepEqual([write({}).writer, write({}).actor], ["workflow", "engine-1"]);
  assert.equal(write({ writer: "user" }).writer, "user");
});

test("what cannot be recorded is counted, never thrown into the application", () => {
  const failing = { ...memory(), name: "broken", write() { throw new Error("disk on fire"); } };
  const sink = memory();
  const audit = new Auditor({ sinks: [failing, sink] });
  const cyclic = (v) => {
    const doc = { v };
    doc.self = doc;
    return doc;
  };
  // Two documents that loop forever: the walk stops at the depth limit; the write is counted.
  assert.deepEqual(audit.record({ entity: "e", writer: "w", before: cyclic(1), after: cyclic(2) }), []);
  // A value JSON cannot hold loses its own event; the write's other events go.
  const kept = audit.record({ entity: "e", writer: "w", before: {}, after: { n: 10n, ok: true } });
  assert.deepEqual(kept.map((e) => e.field), ["ok"]);
  const stats = audit.stats();
  assert.equal(stats.sinks.instrumentation.dropped, 2);
  assert.deepEqual(stats.sinks.instrumentation.reasons, { RangeError: 1, TypeError: 1 });
  assert.equal(stats.sinks.broken.dropped, 1);
  assert.match(stats.sinks.broken.last_error, /disk on fire/);
  assert.deepEqual(sink.events.map((e) => e.field), ["ok"], "a failing sink does not keep the others from their copy");
});
