// The OpenTelemetry path: the application's own JS logs SDK exports field.transition records
// over OTLP/HTTP to audit serve's /v1/logs; they arrive as the same events as over /v1/events.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchLogRecordProcessor, LoggerProvider } from "@opentelemetry/sdk-logs";
import { Auditor, OtelLogSink } from "../dist/index.js";
import { ingestAndCheck, scratch, startServe } from "./support.mjs";

function spooledEvents(dir) {
  return readdirSync(dir).filter((f) => f.endsWith(".jsonl"))
    .flatMap((f) => readFileSync(join(dir, f), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)));
}

const writes = [
  { entity: "block-A", entityType: "block", writer: "workflow", actor: "engine-1", before: { content: "", tags: [] },
    after: { content: "x", tags: ["a"], extra: { deep: [1, null, true] } }, baseVersion: 1, sourceTs: "2025-01-31T12:00:00Z" },
  { entity: "block-A", entityType: "block", writer: "user", before: { content: "", status: null }, after: { content: "y" }, baseVersion: 1 },
];

test("OTLP logs through the application's SDK and JSON Lines give the same events", async (t) => {
  const viaOtlp = scratch("otlp-spool");
  const viaJsonl = scratch("jsonl-spool");
  const otlpServe = await startServe({ spool: viaOtlp });
  const jsonlServe = await startServe({ spool: viaJsonl });
  t.after(async () => { await otlpServe.stop().catch(() => {}); await jsonlServe.stop().catch(() => {}); });

  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ "service.name": "web" }),
    processors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter({
      url: `${otlpServe.endpoint}/v1/logs`, headers: { Authorization: `Bearer ${otlpServe.token}` },
    }) })],
  });
  const otel = new Auditor({ sinks: [new OtelLogSink(provider.getLogger("conflict-audit"), { provider })] });
  const direct = new Auditor({ endpoint: jsonlServe.endpoint, token: jsonlServe.token, service: "web" });
  for (const w of writes) {
    const a = otel.record({ ...w, writeId: `w-${w.writer}` });
    const b = direct.record({ ...w, writeId: `w-${w.writer}` });
    assert.equal(a.length, b.length);
  }
  await otel.flush();
  await direct.flush();
  await provider.shutdown();
  await otlpServe.stop();
  await jsonlServe.stop();

  // Same events but for what each path adds on its own: ids, clocks, the collector's attrs.
  const comparable = (e) => {
    const { event_id: _id, ts: _ts, attrs, ...rest } = e;
    return { ...rest, service: attrs?.["service.name"] };
  };
  const key = (e) => `${e.writer} ${e.field}`;
  const a = spooledEvents(viaOtlp).map(comparable).sort((x, y) => key(x).localeCompare(key(y)));
  const b = spooledEvents(viaJsonl).map(comparable).sort((x, y) => key(x).localeCompare(key(y)));
  assert.equal(a.length, 5);
  assert.deepEqual(a, b);
  assert.equal(otel.stats().sinks["otel-logs"].sent, 5);

  const { counts } = await ingestAndCheck(viaOtlp);
  assert.deepEqual([counts.ingested, counts.rejected], [5, 0]);
});
