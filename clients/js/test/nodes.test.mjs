// AuditedNodes: a writer's setNodes, recorded node by node against what the writer read.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createStore } from "zustand/vanilla";
import { Auditor, AuditedNodes } from "../dist/index.js";

function memory() {
  return { name: "memory", events: [], attach() {}, async flush() {}, async close() {}, write(events) { this.events.push(...events); } };
}

/** State with a React-like setter: takes nodes or a function of the previous nodes. */
function reactState(nodes) {
  const state = { nodes };
  state.setNodes = (update) => {
    state.nodes = typeof update === "function" ? update(state.nodes) : update;
  };
  return state;
}

const block = (id, data) => ({ id, type: "block", position: { x: 0, y: 0 }, data });
const setData = (id, data) => (nodes) => nodes.map((n) => (n.id === id ? { ...n, data: { ...n.data, ...data } } : n));
const brief = (events) => events.map((e) => [e.entity, e.field, e.change, e.old, e.new, e.writer, e.base_version, e.version]);

test("each node is an entity; versions and the stamp travel with the node", () => {
  const sink = memory();
  const flow = new AuditedNodes(new Auditor({ sinks: [sink] }), { entityType: "block", exclude: ["position"] });
  const state = reactState([block("A", { content: "" }), block("B", { content: "" })]);
  const engine = flow.setter(state.setNodes, { writer: "workflow" });
  engine(setData("A", { content: "one" }));
  engine((nodes) => setData("A", { content: "two" })(nodes).map((n) => (n.id === "B" ? { ...n, position: { x: 9, y: 9 } } : n)));
  assert.deepEqual(brief(sink.events), [
    ["A", "data.content", "changed", "", "one", "workflow", undefined, 1],
    ["A", "data.content", "changed", "one", "two", "workflow", 1, 2],
  ]);
  assert.equal(sink.events[0].entity_type, "block");
  const [a, b] = state.nodes;
  assert.deepEqual(
    { ...a._meta, last_updated_at: undefined },
    { last_updated_by: "workflow", last_updated_at: undefined, version: 2, write_id: sink.events[1].write_id },
  );
  assert.equal(b._meta, undefined, "a change of an excluded path only is no write");
});

for (const [name, options] of [["no rules of its own", {}], ["rules of its own", { exclude: ["position"] }]]) {
  test(`the stamp goes under the Auditor's metaKey, and a second write shows no change of it (${name})`, () => {
    const sink = memory();
    const flow = new AuditedNodes(new Auditor({ sinks: [sink], metaKey: "stamp" }), options);
    const state = reactState([block("A", { content: "" })]);
    const engine = flow.setter(state.setNodes, { writer: "workflow" });
    engine(setData("A", { content: "one" }));
    engine(setData("A", { content: "two" }));
    assert.deepEqual(brief(sink.events), [
      ["A", "data.content", "changed", "", "one", "workflow", undefined, 1],
      ["A", "data.content", "changed", "one", "two", "workflow", 1, 2],
    ]);
    assert.equal(state.nodes[0].stamp.version, 2);
    assert.equal(state.nodes[0]._meta, undefined);
  });
}

test("a write from a list read before an await: the overwritten change is recorded as lost", () => {
  const sink = memory();
  const flow = new AuditedNodes(new Auditor({ sinks: [sink] }));
  const state = reactState([block("A", { indexingList: [{ index_name: "i1", status: "processing" }] })]);
  const user = flow.setter(state.setNodes, { writer: "user" });
  const poller = flow.setter(state.setNodes, { writer: "polling_sync" });
  poller(setData("A", { content: "x" })); // version 1
  // The user's handler reads the node, then awaits an embedding request…
  const read = state.nodes[0];
  const indexingList = read.data.indexingList;
  // …meanwhile the poller marks the index done (version 2)…
  poller((nodes) => nodes.map((n) => ({ ...n, data: { ...n.data, indexingList: [{ ...n.data.indexingList[0], status: "done" }] } })));
  // …and the handler writes back the list it read, with its new item (version 3).
  user(setData("A", { indexingList: [...indexingList, { index_name: "i2", status: "processing" }] }), { read });
  const userEvents = sink.events.filter((e) => e.writer === "user");
  assert.deepEqual(brief(userEvents).sort(), [
    ["A", "data.indexingList.0.status", "changed", "processing", "processing", "user", 1, 3],
    ["A", "data.indexingList.1", "added", undefined, { index_name: "i2", status: "processing" }, "user", 1, 3],
  ]);
  assert.equal(state.nodes[0].data.indexingList[0].status, "processing", "the bug is the application's, kept as it is");
});

test("nodes added and removed: fields added, fields removed", () => {
  const sink = memory();
  const flow = new AuditedNodes(new Auditor({ sinks: [sink] }), { exclude: ["position", "type"] });
  const state = reactState([block("A", { v: 1 })]);
  const user = flow.setter(state.setNodes, { writer: "user" });
  user([block("B", { v: 2 })]);
  assert.deepEqual(brief(sink.events).sort(), [
    ["A", "data", "removed", { v: 1 }, undefined, "user", undefined, 1],
    ["A", "id", "removed", "A", undefined, "user", undefined, 1],
    ["B", "data", "added", undefined, { v: 2 }, "user", undefined, 1],
    ["B", "id", "added", undefined, "B", "user", undefined, 1],
  ]);
});

test("an updater React calls twice (StrictMode) is recorded once", () => {
  const sink = memory();
  const flow = new AuditedNodes(new Auditor({ sinks: [sink] }));
  let nodes = [block("A", { v: 1 })];
  const strictSetNodes = (update) => {
    update(nodes);
    nodes = update(nodes);
  };
  flow.setter(strictSetNodes, { writer: "user" })(setData("A", { v: 2 }));
  assert.equal(sink.events.length, 1);
  assert.equal(nodes[0].data.v, 2);
});

test("a zustand store: the setter takes values, the current nodes come from the store", () => {
  const sink = memory();
  const flow = new AuditedNodes(new Auditor({ sinks: [sink] }));
  const store = createStore(() => ({ nodes: [block("A", { v: 1 })] }));
  const setNodes = flow.setter((nodes) => store.setState({ nodes }), { writer: "polling_sync", getNodes: () => store.getState().nodes });
  setNodes(setData("A", { v: 2 }));
  setNodes(store.getState().nodes.map((n) => ({ ...n, data: { v: 3 } })));
  assert.deepEqual(brief(sink.events), [
    ["A", "data.v", "changed", 1, 2, "polling_sync", undefined, 1],
    ["A", "data.v", "changed", 2, 3, "polling_sync", 1, 2],
  ]);
  assert.equal(store.getState().nodes[0]._meta.version, 2);
});

test("a failure inside the recorder leaves the application's update as it is, counted", () => {
  const audit = new Auditor({ sinks: [memory()] });
  const flow = new AuditedNodes(audit);
  const state = reactState([block("A", { v: 1 })]);
  const bad = { ...block("A", {}), data: {} };
  bad.data.self = bad.data; // the recorder walks it forever: stopped and counted
  const before = { ...block("A", {}), data: {} };
  before.data.self = before.data;
  state.nodes = [before];
  flow.setter(state.setNodes, { writer: "user" })([bad]);
  assert.equal(state.nodes[0], bad);
  assert.equal(audit.stats().sinks.instrumentation.errors, 1);
});
