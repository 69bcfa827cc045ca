// Node writers: the writer follows async work through AsyncLocalStorage; events go to a spool
// folder with the Python spool's rules, and `audit ingest` + `audit check` find the lost update.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { once } from "node:events";
import { promisify } from "node:util";
import { Auditor, SpoolSink, withWriter } from "../dist/node.js";
import { ingestAndCheck, python, repoRoot, scratch } from "./support.mjs";

const exec = promisify(execFile);

function deferred() {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

/** A document store of blocks with versions, as a Node service would hold them. */
class Blocks {
  docs = new Map([["block-A", { version: 1, doc: { content: "template", status: "idle" } }]]);
  async read(id) {
    await Promise.resolve();
    const { version, doc } = this.docs.get(id);
    return { version, doc: structuredClone(doc) };
  }
  async write(audit, id, read, doc) {
    await Promise.resolve();
    const version = this.docs.get(id).version + 1; // no compare-and-swap: the bug's door
    this.docs.set(id, { version, doc });
    audit.record({ entity: id, entityType: "block", before: read.doc, after: doc, baseVersion: read.version, version });
  }
}

test("async writers in AsyncLocalStorage scopes, spooled, ingested, checked", async () => {
  const dir = scratch("spool");
  const spool = new SpoolSink(dir);
  const audit = new Auditor({ sinks: [spool] });
  const blocks = new Blocks();
  const bothRead = deferred();
  const workflowWrote = deferred();
  let reads = 0;
  const readBlock = async () => {
    const r = await blocks.read("block-A");
    if (++reads === 2) bothRead.resolve();
    return r;
  };

  // The workflow runs the block; template instantiation, started at the same time, refills
  // it from the template it had read, after the workflow's result landed.
  const workflow = withWriter({ writer: "workflow", actor: "engine-1" }, async () => {
    const read = await readBlock();
    await bothRead.promise;
    await blocks.write(audit, "block-A", read, { ...read.doc, content: "result", status: "done" });
    workflowWrote.resolve();
  });
  const instantiation = withWriter("instantiation", async () => {
    const read = await readBlock();
    await workflowWrote.promise;
    await blocks.write(audit, "block-A", read, { ...read.doc, content: "template v2" });
  });
  await Promise.all([workflow, instantiation]);
  await audit.close();

  const lines = spool.sealed.flatMap((f) => readFileSync(f, "utf8").trim().split("\n").map((l) => JSON.parse(l)));
  assert.deepEqual(
    lines.map((e) => [e.writer, e.actor, e.field, e.base_version, e.version]),
    [
      ["workflow", "engine-1", "content", 1, 2],
      ["workflow", "engine-1", "status", 1, 2],
      ["instantiation", undefined, "content", 1, 3],
    ],
  );
  assert.deepEqual(readdirSync(dir).filter((f) => !f.endsWith(".jsonl")), [], "every file sealed");

  const { counts, findings } = await ingestAndCheck(dir);
  assert.equal(counts.ingested, lines.length, "everything spooled is in the store");
  const lost = findings.filter((f) => f.detector === "lost_update");
  assert.equal(lost.length, 1);
  assert.deepEqual([lost[0].entity, lost[0].field, lost[0].writers], ["block-A", "content", ["workflow", "instantiation"]]);
});

/** Seal the spool's abandoned files as the Python side does (collectors/spool.py). */
async function pythonSeal(dir) {
  const code = "import sys; from collectors.spool import seal_abandoned; print(len(seal_abandoned(sys.argv[1])))";
  const { stdout } = await exec(python, ["-c", code, dir], { cwd: repoRoot });
  return Number(stdout.trim());
}

async function startWriter(dir, n, env = process.env) {
  const child = spawn(process.execPath, [new URL("./spool-writer.mjs", import.meta.url).pathname, dir, String(n)], {
    stdio: ["pipe", "pipe", "inherit"], env,
  });
  const [data] = await once(child.stdout, "data");
  assert.equal(String(data), "written\n");
  return child;
}

test("a live Node writer's file is left alone by the Python sealer; a killed one's is recovered", async () => {
  const dir = scratch("spool-kill");
  const child = await startWriter(dir, 5);
  assert.equal(await pythonSeal(dir), 0, "the writer holds its file");
  assert.match(readdirSync(dir).join(), /^[^.]+(\.[^.]+)*\.\d+\.[0-9a-f]{8}\.000001\.jsonl\.part$/);
  child.kill("SIGKILL");
  await once(child, "exit");
  assert.equal(await pythonSeal(dir), 1);
  const { counts } = await ingestAndCheck(dir);
  assert.equal(counts.ingested, 5, "every flushed event survives the kill");
});

test("without flock(1) the open file has a name nobody reads, and is sealed at exit", async () => {
  const dir = scratch("spool-nolock");
  const child = await startWriter(dir, 3, { ...process.env, PATH: "" });
  const [open] = readdirSync(dir);
  assert.match(open, /\.jsonl\.tmp$/);
  child.stdin.write("close\n");
  await once(child, "exit");
  assert.deepEqual(readdirSync(dir), [open.replace(/\.tmp$/, "")]);
  assert.equal(readFileSync(join(dir, readdirSync(dir)[0]), "utf8").trim().split("\n").length, 3);
});
