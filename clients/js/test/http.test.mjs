// The batched fetch to /v1/events, against a real HTTP server on 127.0.0.1 that answers as
// the test says: batching, the bearer token, retries with backoff, final refusals, a full queue.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { Auditor } from "../dist/index.js";

/** A collector stand-in: `answer(request)` gives each request's status; bodies are kept. */
async function collector(t, answer) {
  const requests = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const request = { headers: req.headers, url: req.url, lines: body.split("\n").filter(Boolean) };
      requests.push(request);
      const status = answer(request, requests.length);
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(status < 300 ? { received: request.lines.length } : { error: "no" }));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.close();
    server.closeAllConnections();
  });
  return {
    requests, endpoint: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

const write = (audit, i) => audit.record({ entity: `e${i}`, writer: "w", before: { v: 0 }, after: { v: i } });

test("events go in batches, with the bearer token, as JSON Lines; flush waits for the 2xx", async (t) => {
  const server = await collector(t, () => 200);
  const audit = new Auditor({ endpoint: server.endpoint, token: "s3cret", http: { batchSize: 4, flushIntervalMs: 60_000 } });
  for (let i = 1; i <= 10; i++) write(audit, i);
  await audit.flush();
  assert.deepEqual(server.requests.map((r) => r.lines.length), [4, 4, 2]);
  const [first] = server.requests;
  assert.equal(first.url, "/v1/events");
  assert.equal(first.headers.authorization, "Bearer s3cret");
  assert.equal(first.headers["content-type"], "application/x-ndjson");
  const sent = server.requests.flatMap((r) => r.lines.map((l) => JSON.parse(l).new));
  assert.deepEqual(sent, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "in the order written");
  assert.deepEqual(audit.stats().sinks.http, { sent: 10, dropped: 0, errors: 0, reasons: {}, last_error: null });
  await audit.close();
});

test("a collector that fails for a while gets the batch again, once it answers 2xx", async (t) => {
  const server = await collector(t, (_r, n) => (n <= 2 ? 503 : 200));
  const audit = new Auditor({ endpoint: server.endpoint, http: { backoffMs: 5 } });
  write(audit, 1);
  await audit.flush();
  assert.equal(server.requests.length, 3);
  assert.deepEqual(server.requests.map((r) => r.lines), Array(3).fill(server.requests[0].lines));
  const { http } = audit.stats().sinks;
  assert.deepEqual([http.sent, http.dropped, http.errors, http.reasons], [1, 0, 2, { "HTTP 503": 2 }]);
  await audit.close();
});

test("a refusal (401) is final: the batch is dropped and counted, flush still resolves", async (t) => {
  const server = await collector(t, () => 401);
  const audit = new Auditor({ endpoint: server.endpoint, token: "wrong", http: { backoffMs: 5 } });
  write(audit, 1);
  write(audit, 2);
  await audit.flush();
  assert.equal(server.requests.length, 1, "not retried");
  assert.deepEqual(audit.stats().sinks.http.dropped, 2);
  assert.equal(audit.stats().sinks.http.last_error, "HTTP 401");
  await audit.close();
});

test("no collector at all: retries run out, the events are counted as dropped", async (t) => {
  const server = await collector(t, () => 200);
  await server.close(); // nothing listens on that port any more
  const audit = new Auditor({ endpoint: server.endpoint, http: { backoffMs: 1, maxRetries: 2 } });
  write(audit, 1);
  await audit.flush();
  const { http } = audit.stats().sinks;
  assert.deepEqual([http.sent, http.dropped, http.errors], [0, 1, 3]);
  await audit.close();
});

test("the first lost event is told even when the first failure lost none (a retried try)", async (t) => {
  const server = await collector(t, () => 503);
  const told = t.mock.method(console, "warn", () => {}); // records what a developer would see
  const audit = new Auditor({ endpoint: server.endpoint, http: { backoffMs: 1, maxRetries: 1 } });
  write(audit, 1);
  await audit.flush();
  write(audit, 2);
  await audit.flush();
  const lines = told.mock.calls.map((c) => c.arguments[0]);
  assert.equal(lines.length, 2, lines.join("\n"));
  assert.match(lines[0], /^conflict-audit: http failed, no event lost \(HTTP 503\)/);
  assert.match(lines[1], /^conflict-audit: http failed and dropped 1 event\(s\) \(HTTP 503\)/);
  assert.deepEqual(audit.stats().sinks.http.dropped, 2);
  await audit.close();
});

test("the queue is bounded: what does not fit is dropped and counted", async (t) => {
  let release;
  const held = new Promise((resolve) => (release = resolve));
  const server = await collector(t, () => 200);
  // The first request hangs until released, so everything after it queues up.
  const slowFetch = async (url, init) => { await held; return fetch(url, init); };
  const audit = new Auditor({ endpoint: server.endpoint, http: { batchSize: 1, maxQueue: 3, fetch: slowFetch } });
  for (let i = 1; i <= 6; i++) write(audit, i);
  release();
  await audit.flush();
  const { http } = audit.stats().sinks;
  // One in flight, three queued, two refused.
  assert.deepEqual([http.sent, http.dropped, http.reasons], [4, 2, { "queue full": 2 }]);
  await audit.close();
});
