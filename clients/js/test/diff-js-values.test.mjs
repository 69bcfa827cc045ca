// JavaScript values the JSON fixtures cannot show: they are compared as the JSON they become.
import { test } from "node:test";
import assert from "node:assert/strict";
import { diff } from "../dist/index.js";

const brief = (changes) => changes.map((c) => [c.field, c.change, c.old, c.new]);

test("undefined and functions are absent, as in JSON", () => {
  const onClick = () => {};
  assert.deepEqual(diff({ a: undefined, f: onClick }, { f: () => {} }), []);
  assert.deepEqual(brief(diff({ a: undefined }, { a: 1 })), [["a", "added", undefined, 1]]);
  assert.deepEqual(brief(diff({ a: 1 }, { a: undefined })), [["a", "removed", 1, undefined]]);
  assert.deepEqual(brief(diff({ l: [undefined] }, { l: [null] })), [], "null in an array");
});

test("toJSON is honoured: Dates compare as their ISO text", () => {
  const t = Date.UTC(2025, 0, 1);
  assert.deepEqual(diff({ at: new Date(t) }, { at: new Date(t) }), []);
  assert.deepEqual(diff({ at: new Date(t) }, { at: new Date(t).toISOString() }), []);
  assert.deepEqual(brief(diff({ at: new Date(t) }, { at: new Date(t + 1) })).map((c) => c.slice(0, 2)), [["at", "changed"]]);
});

test("non-finite numbers are null, -0 is 0", () => {
  assert.deepEqual(diff({ a: NaN, b: -0 }, { a: null, b: 0 }), []);
  assert.deepEqual(brief(diff({ a: Infinity }, { a: 1 })), [["a", "changed", Infinity, 1]]);
});

test("inherited names are not keys", () => {
  assert.deepEqual(brief(diff({}, { constructor: "x" })), [["constructor", "added", undefined, "x"]]);
  assert.deepEqual(diff({ toString: undefined }, {}), []);
});
