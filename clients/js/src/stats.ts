/**
 * Counters of what was recorded, sent and dropped, per sink and why: the same shape as the
 * Python side's `audit.stats()`. Failing open means a broken sink costs events, never the
 * application's write; these counters are how anyone finds out. The first failure of each
 * sink is reported with `console.warn`, and so is its first lost event if that first failure
 * lost none (a retried request, a failed flush); later ones are only counted.
 */

export interface SinkStats {
  sent: number;
  dropped: number;
  errors: number;
  reasons: Record<string, number>;
  last_error: string | null;
}

export interface Stats {
  /** Events that recorded writes produced. */
  events: number;
  /** Per sink; also `instrumentation` (a write that could not be diffed or recorded). */
  sinks: Record<string, SinkStats>;
}

function describe(reason: unknown): [kind: string, detail: string] {
  if (reason instanceof Error) {
    const first = reason.message.trim().split("\n")[0] ?? "";
    return [reason.name, `${reason.name}: ${first}`];
  }
  const text = String(reason);
  return [text, text];
}

export class Health {
  private events = 0;
  private readonly sinks = new Map<string, SinkStats>();
  // the sinks whose first failure, and whose first lost event, were told
  private readonly toldFailure = new Set<string>();
  private readonly toldLoss = new Set<string>();

  private slot(name: string): SinkStats {
    let slot = this.sinks.get(name);
    if (slot === undefined) {
      slot = { sent: 0, dropped: 0, errors: 0, reasons: {}, last_error: null };
      this.sinks.set(name, slot);
    }
    return slot;
  }

  recorded(n: number): void {
    this.events += n;
  }

  sent(name: string, n: number): void {
    this.slot(name).sent += n;
  }

  /** One failure of `name` that lost `n` events (0: a failure that lost none, e.g. a retried request). */
  dropped(name: string, reason: unknown, n: number): void {
    const [kind, detail] = describe(reason);
    const slot = this.slot(name);
    slot.dropped += n;
    slot.errors += 1;
    slot.reasons[kind] = (slot.reasons[kind] ?? 0) + 1;
    slot.last_error = detail.slice(0, 300);
    const tell = !this.toldFailure.has(name) || (n > 0 && !this.toldLoss.has(name));
    this.toldFailure.add(name);
    if (n > 0) this.toldLoss.add(name);
    if (tell) {
      const what =
        n > 0
          ? `failed and dropped ${n} event(s) (${slot.last_error}); the application goes on`
          : `failed, no event lost (${slot.last_error}); the application goes on, ` +
            "a first lost event will be told too";
      try {
        console.warn(`conflict-audit: ${name} ${what}; further failures are only counted: see stats()`);
      } catch {
        // a broken console must not break the write either
      }
    }
  }

  snapshot(): Stats {
    const sinks: Record<string, SinkStats> = {};
    for (const [name, s] of this.sinks) sinks[name] = { ...s, reasons: { ...s.reasons } };
    return { events: this.events, sinks };
  }
}
