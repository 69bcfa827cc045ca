// Runs in Chromium (see record.mjs): the added cost of Auditor.record() per write of a
// 50-leaf node, one field changed, events going to the real HTTP sink.
import { Auditor } from "conflict-audit";

/** A React Flow-like node with 50 leaves. */
function node() {
  const data = { content: "text", status: "idle", label: "Block", tags: ["a", "b", "c", "d"] };
  for (let i = 0; i < 23; i++) data[`field${i}`] = i % 2 ? `value ${i}` : i;
  data.config = { model: "gpt", temperature: 0.2, flags: { a: true, b: false, c: null } };
  data.indexingList = [1, 2, 3].map((i) => ({ index_name: `idx-${i}`, status: "done", chunks: i * 10 }));
  return { id: "block-A", type: "block", position: { x: 1, y: 2 }, measured: { width: 3, height: 4 }, data };
}

function leaves(value) {
  if (value === null || typeof value !== "object") return 1;
  return Object.values(value).reduce((n, v) => n + leaves(v), 0);
}

function timeIt(n, fn) {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn(i);
  return ((performance.now() - t0) * 1000) / n;
}

/**
 * µs `withRecord` adds to `bare`, per call: rounds alternate the two (the machine is shared,
 * its load comes and goes) and the median difference is kept.
 */
function added(bare, withRecord, n = 4000, rounds = 9) {
  timeIt(n, bare);
  timeIt(n, withRecord); // warm up
  const diffs = [];
  for (let r = 0; r < rounds; r++) diffs.push(timeIt(n, withRecord) - timeIt(n, bare));
  diffs.sort((a, b) => a - b);
  return diffs[rounds >> 1];
}

window.runBench = async (endpoint) => {
  const audit = new Auditor({ endpoint, exclude: ["position", "measured"], http: { maxQueue: 1e9 } });
  const base = node();
  const copies = Array.from({ length: 64 }, () => structuredClone(base));
  const results = { leaves: leaves(base) };
  // React's way: a new node sharing what did not change.
  const immutable = (i) => ({ ...base, data: { ...base.data, content: `text ${i}` } });
  let sink = 0;
  results.immutable_us = added((i) => { sink += immutable(i).data.content.length; }, (i) => {
    audit.record({ entity: "block-A", writer: "user", before: base, after: immutable(i), baseVersion: i });
  });
  // Worst case: every container a different object, so the whole node is walked.
  const cloned = (i) => { const c = copies[i % 64]; c.data.content = `text ${i}`; return c; };
  results.deep_copy_us = added((i) => { sink += cloned(i).data.content.length; }, (i) => {
    audit.record({ entity: "block-A", writer: "user", before: base, after: cloned(i), baseVersion: i });
  });
  // Nothing changed, but nothing shared either: the whole walk, no event.
  const same = structuredClone(base);
  results.unchanged_copy_us = added(() => { sink += same.id.length; }, () => {
    audit.record({ entity: "block-A", writer: "user", before: base, after: same });
  });
  await audit.flush();
  results.stats = audit.stats().sinks.http;
  results.sink = sink > 0;
  return results;
};
