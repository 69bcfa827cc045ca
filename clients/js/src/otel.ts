/**
 * Events as OpenTelemetry log records, for an application that already ships logs with the
 * OpenTelemetry JS logs SDK: `audit serve` takes them at `POST /v1/logs` (docs/contract.md §5).
 * The record's event name and its attribute `event` are `field.transition`; its attributes
 * carry the keys of §1, with `old`, `new` and `attrs` as JSON text (log attributes hold
 * primitives), as the Python side's `OTelLogSink` sends them. No dependency: the logger is
 * the application's own (`logs.getLogger("conflict-audit")` or `provider.getLogger(…)`).
 */
import { TRANSITION, type TransitionEvent } from "./event.js";
import type { Sink } from "./sink.js";
import type { Health } from "./stats.js";

/** The part of an OpenTelemetry `Logger` this sink uses. */
export interface OtelLogger {
  emit(record: {
    eventName?: string;
    timestamp?: Date;
    body?: string;
    attributes?: Record<string, string | number | boolean>;
  }): void;
}

export interface OtelLogSinkOptions {
  /** The provider behind the logger, so that `flush()` can export what it holds. */
  provider?: { forceFlush(): Promise<void> };
  name?: string;
}

const JSON_KEYS = new Set(["old", "new", "attrs"]);

/** The event as log attributes: primitives as they are, JSON text for values. */
export function otelAttributes(event: TransitionEvent): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(event)) {
    if (value === undefined) continue;
    if (JSON_KEYS.has(key)) out[key] = JSON.stringify(value);
    else if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") out[key] = value;
    else out[key] = JSON.stringify(value);
  }
  return out;
}

export class OtelLogSink implements Sink {
  readonly name: string;
  private health: Health | null = null;

  constructor(private readonly logger: OtelLogger, private readonly options: OtelLogSinkOptions = {}) {
    this.name = options.name ?? "otel-logs";
  }

  attach(health: Health): void {
    this.health = health;
  }

  write(events: readonly TransitionEvent[], lines: readonly string[]): void {
    let sent = 0;
    events.forEach((event, i) => {
      try {
        this.logger.emit({
          eventName: TRANSITION,
          timestamp: new Date(event.ts),
          body: lines[i],
          attributes: otelAttributes(event),
        });
        sent += 1;
      } catch (err) {
        this.health?.dropped(this.name, err, 1);
      }
    });
    // Handed to the SDK, whose batch processor may still drop under load (its own counters).
    this.health?.sent(this.name, sent);
  }

  async flush(): Promise<void> {
    await this.options.provider?.forceFlush();
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
