/**
 * The transition event of docs/contract.md §1, built from a write's changes: one event per
 * changed field, sharing the write's `write_id`.
 */
import type { Change, ChangeKind } from "./diff.js";

export const TRANSITION = "field.transition";

export interface TransitionEvent {
  event: typeof TRANSITION;
  event_id: string;
  ts: string;
  entity: string;
  entity_type?: string;
  field: string;
  change: ChangeKind;
  old?: unknown;
  new?: unknown;
  writer: string;
  actor?: string;
  write_id: string;
  base_version?: number;
  version?: number;
  source_ts?: string;
  priority?: number;
  trace_id?: string;
  span_id?: string;
  attrs?: Record<string, unknown>;
}

/** What a write says about itself besides its changes. */
export interface WriteInfo {
  entity: string;
  entityType?: string;
  writer: string;
  actor?: string;
  writeId: string;
  baseVersion?: number;
  version?: number;
  sourceTs?: string;
  priority?: number;
  traceId?: string;
  spanId?: string;
  attrs?: Record<string, unknown>;
  ts: string;
}

function randomHex(bytes: number): string {
  const buf = new Uint8Array(bytes);
  globalThis.crypto.getRandomValues(buf);
  let hex = "";
  for (const b of buf) hex += b.toString(16).padStart(2, "0");
  return hex;
}

// Ids as on the Python side: a random prefix per page or process and a counter (32 hex digits).
const prefix = randomHex(8);
let counter = 0;

export function newId(): string {
  counter += 1;
  return prefix + counter.toString(16).padStart(16, "0");
}

let lastMs = 0;
let second = -1;
let secondText = ""; // "YYYY-MM-DDTHH:MM:SS" of `second`, formatted once a second

/**
 * The clock as RFC 3339 UTC with microseconds, strictly increasing within the page or
 * process, so that writes without versions keep their order (docs/contract.md §2).
 */
export function nowIso(): string {
  const perf = globalThis.performance;
  let ms = perf ? perf.timeOrigin + perf.now() : Date.now();
  if (ms <= lastMs) ms = lastMs + 0.001;
  lastMs = ms;
  const s = Math.floor(ms / 1000);
  if (s !== second) {
    second = s;
    secondText = new Date(s * 1000).toISOString().slice(0, 19);
  }
  const micros = Math.min(999_999, Math.floor((ms - s * 1000) * 1000));
  return `${secondText}.${String(micros).padStart(6, "0")}Z`;
}

/** RFC 3339 text for a Date, epoch milliseconds, or text (kept as it is). */
export function asTimestamp(value: Date | number | string | undefined): string | undefined {
  if (value === undefined || typeof value === "string") return value;
  const date = typeof value === "number" ? new Date(value) : value;
  if (Number.isNaN(date.getTime())) throw new RangeError(`not a timestamp: ${String(value)}`);
  return date.toISOString();
}

export function buildEvents(changes: readonly Change[], w: WriteInfo): TransitionEvent[] {
  return changes.map((c) => {
    // Keys in the contract's order, so that lines read like the Python side's.
    const e: TransitionEvent = {
      event: TRANSITION, event_id: newId(), ts: w.ts, entity: w.entity,
    } as TransitionEvent;
    if (w.entityType !== undefined) e.entity_type = w.entityType;
    e.field = c.field;
    e.change = c.change;
    if ("old" in c) e.old = c.old;
    if ("new" in c) e.new = c.new;
    e.writer = w.writer;
    if (w.actor !== undefined) e.actor = w.actor;
    e.write_id = w.writeId;
    if (w.baseVersion !== undefined) e.base_version = w.baseVersion;
    if (w.version !== undefined) e.version = w.version;
    if (w.sourceTs !== undefined) e.source_ts = w.sourceTs;
    if (w.priority !== undefined) e.priority = w.priority;
    if (w.traceId !== undefined) e.trace_id = w.traceId;
    if (w.spanId !== undefined) e.span_id = w.spanId;
    if (w.attrs !== undefined) e.attrs = w.attrs;
    return e;
  });
}
