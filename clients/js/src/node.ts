/**
 * The Node entry: everything of the main entry, with the writer in effect carried by
 * `AsyncLocalStorage` (so it follows `await`s and stays apart between concurrent requests
 * and jobs), and the spool sink.
 *
 *   import { Auditor, SpoolSink, withWriter } from "conflict-audit/node";
 *   const audit = new Auditor({ sinks: [new SpoolSink("/var/spool/myservice")] });
 *   await withWriter({ writer: "instantiation", actor: job.id }, () => instantiate(job));
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { Auditor as BaseAuditor, type AuditorOptions, type WriterScope } from "./auditor.js";

export * from "./index.js";
export { SpoolSink, type SpoolOptions } from "./spool.js";

const scope = new AsyncLocalStorage<WriterScope>();

/** Run `fn` as `writer`: every write it records, also after its `await`s, is that writer's. */
export function withWriter<T>(writer: string | WriterScope, fn: () => T): T {
  return scope.run(typeof writer === "string" ? { writer } : writer, fn);
}

/** The writer scope in effect, or undefined outside any. */
export function currentWriter(): WriterScope | undefined {
  return scope.getStore();
}

/** The Auditor, taking the writer of a write from `withWriter` when the write names none. */
export class Auditor extends BaseAuditor {
  constructor(options: AuditorOptions = {}) {
    super({ currentWriter, ...options });
  }
}
