"""The collector's throughput and latency: ``audit serve`` on loopback, batched clients.

For each kind of client (OTLP protobuf as the Python exporter sends it, OTLP/JSON as the
JavaScript exporter sends it, JSON Lines as a script sends it), ``--clients`` threads send
batches of ``--batch`` events over keep-alive connections for ``--seconds``; each answer
means the batch is written and fsynced in the spool. Prints events/s, p50/p99 request
latency, and the collector's CPU time per event (its share of a shared machine).

Goal: >= 50,000 events/s sustained on 2 cores, p99 < 50 ms for 1,000-event batches.
Figures and ratios from one run; no assertions. The clients run on the same cores.

    python bench/serve.py [--seconds 10] [--clients 4] [--batch 1000]
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import httpx  # noqa: E402
import orjson  # noqa: E402
from collector_process import CollectorProcess  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (  # noqa: E402
    ExportLogsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402
from opentelemetry.proto.logs.v1.logs_pb2 import (  # noqa: E402
    LogRecord,
    ResourceLogs,
    ScopeLogs,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource  # noqa: E402

from audit.emit import otel_attributes  # noqa: E402


def events(batch: int, offset: int) -> list[dict]:
    """A batch like the instrumentation's: a block's content and status, versions, ids."""
    return [
        {"event": "field.transition", "event_id": f"bench-{offset + i}",
         "ts": "2026-01-01T10:00:00.123456+00:00", "entity": f"block-{(offset + i) % 997}",
         "entity_type": "block", "field": "content", "change": "changed",
         "old": {"text": f"v{i}", "tags": ["a", "b"]}, "new": {"text": f"v{i + 1}", "tags": ["a"]},
         "writer": "workflow", "actor": "engine-1", "write_id": f"w-{offset + i}",
         "base_version": i, "version": i + 1}
        for i in range(batch)
    ]


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def otlp_request(batch: list[dict]) -> ExportLogsServiceRequest:
    """As `audit.OTelLogSink` and the OTLP exporter would send the batch."""
    records = [
        LogRecord(time_unix_nano=1_767_261_600_123_456_789, event_name="field.transition",
                  trace_id=os.urandom(16), span_id=os.urandom(8),
                  body=AnyValue(string_value=orjson.dumps(e).decode()),
                  attributes=[_kv(k, v) for k, v in otel_attributes(e).items()])
        for e in batch
    ]
    resource = Resource(attributes=[_kv("service.name", "bench"),
                                    _kv("telemetry.sdk.language", "python")])
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=resource, scope_logs=[ScopeLogs(log_records=records)])])


def otlp_json(request: ExportLogsServiceRequest) -> bytes:
    """The same request in OTLP/JSON, as the JavaScript exporter sends it."""
    message = json_format.MessageToDict(request)
    for record in message["resourceLogs"][0]["scopeLogs"][0]["logRecords"]:
        for key in ("traceId", "spanId"):
            record[key] = base64.b64decode(record[key]).hex()  # OTLP/JSON ids are hex
    return orjson.dumps(message)


def bodies(kind: str, batch: int, n: int = 8) -> list[bytes]:
    out = []
    for j in range(n):
        evs = events(batch, j * batch)
        if kind == "jsonl":
            out.append(b"".join(orjson.dumps(e) + b"\n" for e in evs))
        elif kind == "otlp-protobuf":
            out.append(otlp_request(evs).SerializeToString())
        else:
            out.append(otlp_json(otlp_request(evs)))
    return out


CONTENT_TYPES = {"jsonl": "application/x-ndjson", "otlp-protobuf": "application/x-protobuf",
                 "otlp-json": "application/json"}
PATHS = {"jsonl": "/v1/events", "otlp-protobuf": "/v1/logs", "otlp-json": "/v1/logs"}


def cpu_seconds(pid: int) -> float:
    """CPU time of the collector and of its worker processes (``--workers``)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(int(child)) for child in children)


def run(kind: str, collector: CollectorProcess, args: argparse.Namespace) -> dict:
    payloads = bodies(kind, args.batch)
    url = collector.url + PATHS[kind]
    headers = {**collector.headers, "Content-Type": CONTENT_TYPES[kind]}
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(c: int) -> None:
        with httpx.Client(timeout=60) as http:
            i = c
            while not stop.is_set():
                started = time.perf_counter()
                r = http.post(url, content=payloads[i % len(payloads)], headers=headers)
                elapsed = time.perf_counter() - started
                with lock:
                    if r.status_code == 200:
                        latencies.append(elapsed)
                    else:
                        failures.append(f"{r.status_code} {r.text[:80]}")
                i += args.clients

    # warm up: one request per client kind, not counted
    httpx.post(url, content=payloads[0], headers=headers, timeout=60).raise_for_status()
    cpu0, t0 = cpu_seconds(collector.proc.pid), time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
    for t in threads:
        t.start()
    stop.wait(args.seconds)
    stop.set()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - t0, cpu_seconds(collector.proc.pid) - cpu0
    n = len(latencies) * args.batch
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    return {"kind": kind, "requests": len(latencies), "events": n, "rate": n / wall,
            "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, "failures": len(failures),
            "server_cpu_us_per_event": cpu / n * 1e6 if n else 0.0,
            "server_cpu_share": cpu / wall, "body_kb": len(payloads[0]) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--kinds", default="otlp-protobuf,otlp-json,jsonl")
    parser.add_argument("--workers", type=int, default=1, help="audit serve --workers")
    args = parser.parse_args()
    print(f"audit serve --workers {args.workers} on 127.0.0.1, {args.clients} clients, "
          f"{args.batch}-event batches, "
          f"{args.seconds:g} s each; {os.cpu_count()} cores, shared with the clients"
          f" (load average before: {os.getloadavg()[0]:.2f})")
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        for kind in args.kinds.split(","):
            spool = Path(tmp) / kind
            with CollectorProcess(spool, Path(tmp), "--max-body-mb", "16",
                                  "--workers", str(args.workers)) as collector:
                result = run(kind, collector, args)
                assert collector.stop() == 0
            stored = sum(1 for p in spool.glob("*.jsonl") for _ in p.open("rb"))
            print(f"{kind:14} {result['rate']:>9,.0f} events/s  p50 {result['p50_ms']:6.1f} ms"
                  f"  p99 {result['p99_ms']:6.1f} ms  ({result['requests']} requests of "
                  f"{result['body_kb']:.0f} KiB, {result['failures']} failed; collector CPU "
                  f"{result['server_cpu_us_per_event']:.1f} us/event, "
                  f"{result['server_cpu_share']:.0%} of a core in all; {stored:,} lines sealed)")
    print(f"goal: >= 50,000 events/s, p99 < 50 ms (load average after: "
          f"{os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
