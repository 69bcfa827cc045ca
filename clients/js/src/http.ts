/**
 * Batched `fetch` to the collector's `POST /v1/events` (docs/contract.md §5): JSON Lines with
 * a bearer token, one request at a time in order, retried with exponential backoff, from a
 * bounded queue that counts what it drops. On page hide what is queued leaves at once with
 * `keepalive`, so that closing the tab does not lose the last writes.
 *
 * Why `fetch({keepalive})` and not `navigator.sendBeacon`: a beacon cannot carry the
 * `Authorization` header the collector requires, nor a JSON Lines content type across
 * origins. Retrying a request whose answer was lost doubles nothing: every event carries its
 * `event_id` and the ingest skips one it already holds.
 */
import type { TransitionEvent } from "./event.js";
import { later, sleep, type Sink } from "./sink.js";
import type { Health } from "./stats.js";

export interface HttpSinkOptions {
  /** The collector's base URL, e.g. `http://127.0.0.1:4318`. */
  endpoint: string;
  token?: string;
  /** Events per request (default 500). */
  batchSize?: number;
  /** Bytes per request; default 60,000 in a browser (the keepalive budget is 64 KiB), else 1 MB. */
  maxBatchBytes?: number;
  /** Queued events wait at most this long before they are sent (default 1000 ms). */
  flushIntervalMs?: number;
  /** Events held while the collector is slow or away; beyond that new ones are dropped, counted (default 10,000). */
  maxQueue?: number;
  /** Retries of a failed request before its events are dropped, counted (default 6: about 16 s). */
  maxRetries?: number;
  /** First retry delay (default 250 ms); doubled each time, with jitter, up to 30 s. */
  backoffMs?: number;
  /** Send with `keepalive` (default: in a browser), so that a request outlives the page. */
  keepalive?: boolean;
  fetch?: typeof fetch;
  name?: string;
}

const KEEPALIVE_BUDGET = 60_000;
const MAX_BACKOFF_MS = 30_000;

/** 408 (timeout), 429 (slow down) and 5xx are worth another try; other answers are final. */
function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** The UTF-8 size of `text`, or a little more (a surrogate pair counts 6): cheap, never short. */
function utf8Size(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) n += c > 0x7ff ? 2 : 1;
  }
  return n;
}

const inBrowser = typeof window !== "undefined" && typeof document !== "undefined";

export class HttpSink implements Sink {
  readonly name: string;
  private readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly batchSize: number;
  private readonly maxBatchBytes: number;
  private readonly flushIntervalMs: number;
  private readonly maxQueue: number;
  private readonly maxRetries: number;
  private readonly backoffMs: number;
  private readonly keepalive: boolean;
  private readonly fetch: typeof fetch;
  private health: Health | null = null;

  private queue: string[] = [];
  private sizes: number[] = []; // each queued line's UTF-8 size (at most), newline included
  private queuedBytes = 0;
  private written = 0; // events given to this sink
  private settled = 0; // of those, sent or dropped
  private waiters: { target: number; resolve: () => void }[] = [];
  private pumping = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  private readonly onHide = (): void => this.sendAllNow();
  private readonly onIdle = (): void => {
    if (this.queue.length) this.pump();
  };
  private readonly onVisibility = (): void => {
    if (document.visibilityState === "hidden") this.sendAllNow();
  };

  constructor(options: HttpSinkOptions) {
    this.name = options.name ?? "http";
    this.url = `${options.endpoint.replace(/\/+$/, "")}/v1/events`;
    this.headers = { "Content-Type": "application/x-ndjson" };
    if (options.token) this.headers.Authorization = `Bearer ${options.token}`;
    this.batchSize = options.batchSize ?? 500;
    this.maxBatchBytes = options.maxBatchBytes ?? (inBrowser ? KEEPALIVE_BUDGET : 1_000_000);
    this.flushIntervalMs = options.flushIntervalMs ?? 1000;
    this.maxQueue = options.maxQueue ?? 10_000;
    this.maxRetries = options.maxRetries ?? 6;
    this.backoffMs = options.backoffMs ?? 250;
    this.keepalive = options.keepalive ?? inBrowser;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    if (inBrowser) {
      addEventListener("pagehide", this.onHide);
      document.addEventListener("visibilitychange", this.onVisibility);
    }
    // Node: the send timer does not keep the process alive, so send what is left when
    // nothing else does.
    globalThis.process?.on?.("beforeExit", this.onIdle);
  }

  attach(health: Health): void {
    this.health = health;
  }

  write(_events: readonly TransitionEvent[], lines: readonly string[]): void {
    this.written += lines.length;
    let refused = 0;
    for (const line of lines) {
      if (this.closed || this.queue.length >= this.maxQueue) {
        refused += 1;
        continue;
      }
      const size = utf8Size(line) + 1;
      this.queue.push(line);
      this.sizes.push(size);
      this.queuedBytes += size;
    }
    if (refused) this.drop(this.closed ? "closed" : "queue full", refused);
    if (this.queue.length >= this.batchSize || this.queuedBytes >= this.maxBatchBytes) this.pump();
    else if (this.queue.length && this.timer === null && !this.pumping) {
      this.timer = later(this.flushIntervalMs, () => this.pump());
    }
  }

  flush(): Promise<void> {
    const target = this.written;
    if (this.settled >= target) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.waiters.push({ target, resolve }));
    this.pump();
    return done;
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (inBrowser) {
      removeEventListener("pagehide", this.onHide);
      document.removeEventListener("visibilitychange", this.onVisibility);
    }
    globalThis.process?.off?.("beforeExit", this.onIdle);
  }

  /** Events waiting to be sent (for tests and dashboards). */
  get pending(): number {
    return this.queue.length;
  }

  /** The next batch's lines and its body's UTF-8 size (at most), from the sizes counted on write. */
  private takeBatch(limit: number): [lines: string[], bytes: number] {
    let n = 0;
    let bytes = 0;
    while (n < this.queue.length && n < this.batchSize) {
      const size = this.sizes[n];
      if (n > 0 && bytes + size > limit) break;
      bytes += size;
      n += 1;
    }
    this.queuedBytes -= bytes;
    this.sizes.splice(0, n);
    return [this.queue.splice(0, n), bytes];
  }

  /** Send batches one after another until the queue is empty. */
  private pump(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.pumping) return;
    this.pumping = true;
    void (async () => {
      try {
        while (this.queue.length) await this.send(...this.takeBatch(this.maxBatchBytes));
      } finally {
        this.pumping = false;
      }
    })();
  }

  /** The page is going away: send everything queued now, in parallel, with keepalive. */
  private sendAllNow(): void {
    while (this.queue.length) void this.send(...this.takeBatch(Math.min(this.maxBatchBytes, KEEPALIVE_BUDGET)));
  }

  private async send(batch: string[], bytes: number): Promise<void> {
    const body = `${batch.join("\n")}\n`;
    const keepalive = this.keepalive && bytes <= KEEPALIVE_BUDGET;
    let failure: string;
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await this.fetch(this.url, {
          method: "POST", headers: this.headers, body, keepalive,
        });
        if (response.ok) {
          this.health?.sent(this.name, batch.length);
          this.settle(batch.length);
          return;
        }
        failure = `HTTP ${response.status}`;
        if (!retryable(response.status)) break;
      } catch (err) {
        failure = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      }
      if (attempt >= this.maxRetries || this.closed) {
        this.drop(failure, batch.length);
        return;
      }
      this.health?.dropped(this.name, failure, 0); // a failed try: counted, nothing lost yet
      const delay = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2 ** attempt);
      await sleep(delay / 2 + Math.random() * (delay / 2));
    }
    this.drop(failure, batch.length);
  }

  private drop(reason: string, n: number): void {
    this.health?.dropped(this.name, reason, n);
    this.settle(n);
  }

  private settle(n: number): void {
    this.settled += n;
    if (!this.waiters.length) return;
    const still = [];
    for (const w of this.waiters) {
      if (this.settled >= w.target) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }
}
