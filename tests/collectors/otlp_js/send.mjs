// Sends transitions to `audit serve` through the official OpenTelemetry JS log exporter, as a
// Node service would (JSON over HTTP, the exporter's default):
//   node send.mjs URL TOKEN COUNT ENTITY_PREFIX
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchLogRecordProcessor, LoggerProvider } from "@opentelemetry/sdk-logs";

const [url, token, count, prefix] = process.argv.slice(2);
const exporter = new OTLPLogExporter({
  url: `${url}/v1/logs`,
  headers: { Authorization: `Bearer ${token}` },
});
const provider = new LoggerProvider({
  resource: resourceFromAttributes({ "service.name": "template-service" }),
  processors: [new BatchLogRecordProcessor({ exporter, maxExportBatchSize: 50 })],
});
const logger = provider.getLogger("conflict-audit-test");

for (let i = 0; i < Number(count); i++) {
  logger.emit({
    eventName: "field.transition",
    attributes: {
      ts: new Date(Date.UTC(2026, 0, 1, 10, 0, i)).toISOString(),
      entity: `${prefix}block-${i % 5}`,
      entity_type: "block",
      field: "content",
      writer: "instantiation",
      actor: "node-1",
      old: { text: `v${i}`, tags: ["a", "b"] }, // an OTLP key-value list
      new: JSON.stringify({ text: `v${i + 1}`, tags: ["a"] }), // JSON text, as Python sends it
      base_version: i,
      version: i + 1,
    },
  });
}
// Named by an attribute instead of the event name; a blind write (no old).
logger.emit({
  attributes: { event: "field.transition", ts: "2026-01-01T11:00:00.000Z", entity: `${prefix}block-9`,
                field: "status", new: "done", writer: "instantiation" },
});
logger.emit({ body: "an ordinary log line", attributes: { "http.status": 200 } }); // skipped
logger.emit({ eventName: "field.transition", attributes: { entity: `${prefix}block-0`, field: "x" } }); // refused

await provider.forceFlush();
await provider.shutdown();
