// Every worked case of docs/diff.md (tests/fixtures/diff_cases.json, shared with the Python
// side's conformance test) must give exactly its changes, compared sorted by field, then change.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { diff } from "../dist/index.js";

const fixture = new URL("../../../tests/fixtures/diff_cases.json", import.meta.url);
const { cases } = JSON.parse(readFileSync(fixture, "utf8"));

const order = (x, y) =>
  x.field < y.field ? -1 : x.field > y.field ? 1 : x.change < y.change ? -1 : x.change > y.change ? 1 : 0;

// As JSON: what an event carries; absent old/new stay absent.
const normalized = (changes) => JSON.parse(JSON.stringify(changes)).sort(order);

test("the fixture holds cases", () => {
  assert.ok(cases.length >= 50, `only ${cases.length} cases`);
});

for (const c of cases) {
  test(c.name, () => {
    const options = {};
    if ("list_keys" in c) options.listKeys = c.list_keys;
    if ("exclude" in c) options.exclude = c.exclude;
    assert.deepStrictEqual(normalized(diff(c.before, c.after, options)), normalized(c.changes));
  });
}
