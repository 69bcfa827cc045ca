/**
 * The Auditor: `record()` a write, get docs/contract.md §1 events to the sinks
 * (docs/contract.md §7). It never throws into the application: whatever fails is counted in
 * `stats()` and the write goes on.
 */
import { type Change, type DiffOptions, DiffRules } from "./diff.js";
import { asTimestamp, buildEvents, newId, nowIso, type TransitionEvent } from "./event.js";
import { HttpSink, type HttpSinkOptions } from "./http.js";
import type { Sink } from "./sink.js";
import { Health, type Stats } from "./stats.js";

/** Who is writing: a source (`user`, `workflow`, `polling_sync`, …) and who inside it. */
export interface WriterScope {
  writer: string;
  actor?: string;
  priority?: number;
}

/** One write, as `record` takes it: what the writer read (`before`) and what it wrote (`after`). */
export interface WriteRecord {
  entity: string | number;
  entityType?: string;
  /** Default: the current writer scope (Node: `withWriter`), else the Auditor's `writer`. */
  writer?: string;
  actor?: string;
  before: unknown;
  after: unknown;
  /** The version the writer had read. */
  baseVersion?: number;
  /** The version this write produced; default `baseVersion + 1` when `baseVersion` is given. */
  version?: number;
  /** When the data written was produced at its source (e.g. an SSE event's `updated_at`). */
  sourceTs?: string | number | Date;
  writeId?: string;
  priority?: number;
  attrs?: Record<string, unknown>;
}

/** A write whose changes the caller found itself (see `Auditor.recordChanges`). */
export type WriteMeta = Omit<WriteRecord, "before" | "after">;

export interface AuditorOptions extends DiffOptions {
  /** The collector (`audit serve`) base URL: events go to its `/v1/events` in batches. */
  endpoint?: string;
  /** The collector's bearer token. */
  token?: string;
  /** This application's name, kept in every event's `attrs["service.name"]` as OTLP would. */
  service?: string;
  /** Options of the HTTP sink made for `endpoint`. */
  http?: Omit<HttpSinkOptions, "endpoint" | "token">;
  /** Further sinks: `OtelLogSink`, `SpoolSink` (Node), your own. */
  sinks?: Sink[];
  /** The writer of a write recorded outside any scope and without `writer` (default `unknown`). */
  writer?: string;
  /** Where the current writer scope comes from (the Node entry sets it to `AsyncLocalStorage`). */
  currentWriter?: () => WriterScope | undefined;
  /** Added to every event's `attrs`. */
  attrs?: Record<string, unknown>;
  /** `false`: `record` does nothing (default true). */
  enabled?: boolean;
}

const INSTRUMENTATION = "instrumentation";

function isObject(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export class Auditor {
  readonly rules: DiffRules;
  private readonly sinks: Sink[];
  private readonly health = new Health();
  private readonly defaultWriter: string;
  private readonly currentWriter?: () => WriterScope | undefined;
  private readonly attrs?: Record<string, unknown>;
  private readonly enabled: boolean;

  constructor(options: AuditorOptions = {}) {
    this.rules = new DiffRules(options);
    this.sinks = [...(options.sinks ?? [])];
    if (options.endpoint) {
      this.sinks.unshift(new HttpSink({ ...options.http, endpoint: options.endpoint, token: options.token }));
    }
    for (const sink of this.sinks) sink.attach(this.health);
    this.defaultWriter = options.writer ?? "unknown";
    this.currentWriter = options.currentWriter;
    const attrs = { ...options.attrs };
    if (options.service !== undefined) attrs["service.name"] = options.service;
    this.attrs = Object.keys(attrs).length ? attrs : undefined;
    this.enabled = options.enabled ?? true;
  }

  /**
   * Record one write: `before` is what the writer read (not necessarily the current state:
   * a stale read then shows as a lost update or a chain break), `after` what it wrote.
   * Returns the events queued (none when nothing changed, or when recording failed: counted).
   */
  record(write: WriteRecord): TransitionEvent[] {
    if (!this.enabled) return [];
    try {
      let { before, after } = write;
      if (before == null && isObject(after)) before = {}; // a new entity: its fields are added
      else if (after == null && isObject(before)) after = {}; // a deleted one: removed
      return this.recordChanges(this.rules.diff(before, after), write);
    } catch (err) {
      this.health.dropped(INSTRUMENTATION, err, 1);
      return [];
    }
  }

  /** Record a write whose changes were found by the caller (`DiffRules.diff`). */
  recordChanges(changes: readonly Change[], write: WriteMeta): TransitionEvent[] {
    if (!this.enabled || !changes.length) return [];
    try {
      return this.emit(changes, write);
    } catch (err) {
      this.health.dropped(INSTRUMENTATION, err, changes.length);
      return [];
    }
  }

  /** Count a recording that failed (for recorders built on this one); the app goes on. */
  failed(reason: unknown, lost = 1): void {
    this.health.dropped(INSTRUMENTATION, reason, lost);
  }

  /** Resolves when every event recorded so far is sent or stored (or counted as dropped). */
  async flush(): Promise<void> {
    await Promise.all(this.sinks.map((s) => s.flush().catch((err) => this.health.dropped(s.name, err, 0))));
  }

  /** Flush and stop; later writes are dropped, counted. */
  async close(): Promise<void> {
    await Promise.all(this.sinks.map((s) => s.close().catch((err) => this.health.dropped(s.name, err, 0))));
  }

  /** `{events, sinks: {name: {sent, dropped, errors, reasons, last_error}}}`, like the Python side. */
  stats(): Stats {
    return this.health.snapshot();
  }

  private emit(changes: readonly Change[], write: WriteMeta): TransitionEvent[] {
    const scope = write.writer === undefined ? this.currentWriter?.() : undefined;
    const writer = write.writer ?? scope?.writer ?? this.defaultWriter;
    let version = write.version;
    if (version === undefined && write.baseVersion !== undefined) version = write.baseVersion + 1;
    const attrs = this.attrs && write.attrs ? { ...this.attrs, ...write.attrs } : (write.attrs ?? this.attrs);
    const events = buildEvents(changes, {
      entity: String(write.entity),
      entityType: write.entityType,
      writer,
      actor: write.actor ?? scope?.actor,
      writeId: write.writeId ?? newId(),
      baseVersion: write.baseVersion,
      version,
      sourceTs: asTimestamp(write.sourceTs),
      priority: write.priority ?? scope?.priority,
      attrs,
      ts: nowIso(),
    });
    const kept: TransitionEvent[] = [];
    const lines: string[] = [];
    for (const event of events) {
      try {
        lines.push(JSON.stringify(event));
        kept.push(event);
      } catch (err) {
        this.health.dropped(INSTRUMENTATION, err, 1); // a value JSON cannot hold (a BigInt, a cycle)
      }
    }
    this.health.recorded(events.length);
    for (const sink of this.sinks) {
      try {
        sink.write(kept, lines);
      } catch (err) {
        this.health.dropped(sink.name, err, kept.length);
      }
    }
    return kept;
  }
}
