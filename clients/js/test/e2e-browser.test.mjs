// End to end in a real browser: a React Flow page where engine updates (SSE), a manifest
// poller and the user's clicks race over the same blocks; the "Add index" handler writes back
// a list it read before an await. Events go page → audit serve → spool → audit ingest →
// audit check: the planted lost update is found with its writers, and nothing the page had
// sent is missing from the store.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startSite } from "../e2e/site.mjs";
import { ensureChromium, launch } from "./browser.mjs";
import { ingestAndCheck, scratch, startServe } from "./support.mjs";

const block = (id, label, indexingList = []) => ({
  id, type: "block", position: { x: id === "block-A" ? 0 : 400, y: 0 },
  data: { label, content: "", indexingList },
});

/** Lines the collector has written to its spool so far (sealed or not). */
function spooled(dir) {
  return readdirSync(dir, { recursive: true })
    .filter((f) => /\.jsonl(\.part)?$/.test(f))
    .reduce((n, f) => n + readFileSync(join(dir, f), "utf8").split("\n").filter(Boolean).length, 0);
}

/** `promise`, or a failure naming what did not happen within 30 s. */
function within(promise, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`waited 30 s for ${what}`)), 30_000);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

const browser = ensureChromium();

test("three writers race in React Flow; the stale-list lost update is found, nothing sent is missing",
  { skip: browser.skip ?? false }, async (t) => {
    const spool = scratch("e2e-spool");
    // The page's origin is only known once its server listens: start it first, serve after.
    const config = {};
    const manifest = { block_id: "block-A", indexes: { "idx-1": "processing" } }; // served as it is now
    const site = await startSite({
      config,
      workspace: [block("block-A", "Embed", [{ index_name: "idx-1", status: "processing" }]), block("block-B", "Answer")],
      manifest,
    });
    // Cleaned up in reverse order: the browser, then the collector, then the site.
    const cleanups = [() => site.close()];
    t.after(async () => {
      for (const cleanup of cleanups.reverse()) await cleanup();
    });
    const collector = await startServe({ spool, corsOrigins: [site.origin] });
    let stopped = false;
    cleanups.push(() => (stopped ? undefined : collector.stop()));
    Object.assign(config, { endpoint: collector.endpoint, token: collector.token });

    const chromium = await launch(browser.path);
    cleanups.push(() => chromium.close());
    const page = await chromium.newPage();
    const pageErrors = [];
    page.on("pageerror", (err) => pageErrors.push(err.message));
    await page.goto(site.origin);
    const text = (selector, expected) => page.locator(selector).filter({ hasText: expected }).waitFor();
    await text("[data-index=idx-1]", "idx-1: processing");

    // Engine updates stream in.
    const updatedAt = new Date().toISOString();
    await within(site.listening(), "the page to open the engine stream");
    assert.equal(site.engine({ block_id: "block-A", content: "chunk 1", updated_at: updatedAt }), 1);
    await text("[data-testid=block-A] .content", "chunk 1");
    site.engine({ block_id: "block-B", content: "hello", updated_at: updatedAt });
    await text("[data-testid=block-B] .content", "hello");

    // The user renames a block, then adds an index to block-A: its handler reads the list
    // and waits for the embedding service…
    await page.click("[data-testid=block-B-rename]");
    await text("[data-testid=block-B] .label", "Answer (renamed)");
    await page.click("[data-testid=block-A-add-index]");
    await within(site.embedAsked(), "the handler to ask for an embedding");
    // …while the manifest poller sees idx-1 finished and marks it done…
    manifest.indexes["idx-1"] = "done";
    await text("[data-index=idx-1]", "idx-1: done");
    // …then the embedding answers, and the handler writes back the list it had read.
    site.answerEmbed({ collection_name: "idx-2" });
    await text("[data-index=idx-2]", "idx-2: processing");
    await text("[data-index=idx-1]", "idx-1: processing"); // the poller's "done" is lost
    site.engine({ block_id: "block-A", content: "final", updated_at: new Date().toISOString() });
    await text("[data-testid=block-A] .content", "final");

    await within(page.evaluate(() => window.audit.flush()), "the page's events to be accepted");
    const stats = await page.evaluate(() => window.audit.stats());
    assert.deepEqual(pageErrors, []);
    assert.equal(stats.sinks.http.dropped, 0);
    assert.equal(stats.sinks.http.sent, stats.events);

    // One more click, then the tab goes away before the next batch is due: the page-hide
    // path sends it with keepalive.
    await page.click("[data-testid=block-A-rename]");
    await page.goto("about:blank");
    const expected = stats.events + 1;
    for (let i = 0; spooled(spool) < expected && i < 200; i++) await new Promise((r) => setTimeout(r, 25));
    await collector.stop();
    stopped = true;

    const { counts, findings } = await ingestAndCheck(spool);
    assert.equal(counts.ingested, expected, "every event the page sent is in the store");
    assert.equal(counts.rejected, 0);
    const lost = findings.filter((f) => f.detector === "lost_update");
    assert.deepEqual(
      lost.map((f) => [f.entity, f.field, f.writers]),
      [["block-A", "data.indexingList.0.status", ["polling_sync", "user"]]],
    );
    // The honest writers raise nothing: every finding is about the planted bug.
    assert.deepEqual([...new Set(findings.map((f) => `${f.entity} ${f.field}`))], ["block-A data.indexingList.0.status"]);
  });
