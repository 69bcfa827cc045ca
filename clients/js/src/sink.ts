import type { TransitionEvent } from "./event.js";
import type { Health } from "./stats.js";

/**
 * Where events go. `write` gets one write's events and each one's JSON line (rendered once
 * for all sinks); it should not throw, and if it does the Auditor counts the loss. A sink
 * that stores or sends later counts `sent`/`dropped` itself in the `Health` it is attached to.
 */
export interface Sink {
  readonly name: string;
  attach(health: Health): void;
  write(events: readonly TransitionEvent[], lines: readonly string[]): void;
  /** Resolves when everything written so far is stored or sent (or counted as dropped). */
  flush(): Promise<void>;
  /** Flush, then let go of timers, listeners and files; later writes are dropped (counted). */
  close(): Promise<void>;
}

/** A timer that does not keep a Node process alive (browsers have no `unref`). */
export function later(ms: number, fn: () => void): ReturnType<typeof setTimeout> {
  const t = setTimeout(fn, ms);
  (t as { unref?: () => void }).unref?.();
  return t;
}

/** A wait that keeps a Node process alive: events are still on their way. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
