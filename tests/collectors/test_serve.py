"""`audit serve`: the official OpenTelemetry exporters (Python in this process, JavaScript in
Node), curl-like clients and raw sockets against a real collector on 127.0.0.1."""

from __future__ import annotations

import base64
import gzip
import json
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import orjson
import pytest
from collector_process import TOKEN, CollectorProcess
from google.protobuf import json_format
from instrument_support import ListSink
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ResourceMessage
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

import audit
from collectors.ingest import ingest
from collectors.store import open_store
from frontends.cli import main as audit_main

JS_CLIENT = Path(__file__).parent / "otlp_js"
ORIGIN = "https://app.example.com"
JSONL = {"Content-Type": "application/x-ndjson"}


@pytest.fixture(scope="module")
def collector(tmp_path_factory) -> CollectorProcess:
    """One collector for the tests that only send to it: a 256 KiB body limit, one CORS
    origin. Each test keeps to its own entities."""
    work = tmp_path_factory.mktemp("collector")
    with CollectorProcess(work / "spool", work, "--max-body-mb", "0.25",
                          "--cors-origin", ORIGIN) as c:
        yield c


def spool_events(spool: Path, entity_prefix: str = "") -> list[dict]:
    """Every event in the spool's files, sealed or not, in file and line order."""
    lines = [
        line for path in sorted(spool.glob("*.jsonl*")) for line in path.read_bytes().splitlines()
    ]
    events = [orjson.loads(line) for line in lines]
    return [e for e in events if e.get("entity", "").startswith(entity_prefix)]


def ingest_spool(spool: Path, db: Path):
    con = open_store(db)
    try:
        return ingest(con, [str(spool)], notify=lambda _msg: None)
    finally:
        con.close()


def jsonl(events: list[dict]) -> bytes:
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


def transition(entity: str, i: int, **extra) -> dict:
    return {"event": "field.transition", "ts": f"2026-01-01T10:00:{i % 60:02d}Z",
            "entity": entity, "field": "content", "old": f"v{i}", "new": f"v{i + 1}",
            "writer": "script", **extra}


# --- the official exporters ----------------------------------------------------------------------


def test_python_exporter_protobuf_gzip_round_trip(collector, fresh_audit):
    """What `audit.OTelLogSink` emits, through the Python OTLP exporter, comes out of the
    collector as the very event the instrumentation made, plus resource attributes, the
    span's ids and received_at."""
    provider = LoggerProvider(resource=Resource.create({"service.name": "py-service"}))
    provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(
        endpoint=f"{collector.url}/v1/logs", headers=collector.headers,
        compression=Compression.Gzip,
    )))
    made = ListSink()
    audit.configure(sink=[made, audit.OTelLogSink(provider)], otel=False)
    tracer = TracerProvider().get_tracer("test")
    with audit.writer("user", actor="u-7"), tracer.start_as_current_span("edit") as span:
        for i in range(12):
            audit.record("py-block", {"content": f"v{i}", "tags": [i]},
                         {"content": f"v{i + 1}", "tags": [i, i + 1]},
                         entity_type="block", base_version=i, version=i + 1)
    provider.get_logger("app").emit(body="an ordinary log line")  # skipped
    assert provider.force_flush(30_000)
    provider.shutdown()

    got = spool_events(collector.spool, "py-block")
    assert len(got) == len(made.events) == 24
    ctx = span.get_span_context()
    for sent, stored in zip(made.events, got, strict=True):
        attrs = stored.pop("attrs")
        assert attrs["service.name"] == "py-service"
        assert attrs["received_at"].endswith("Z")
        assert stored.pop("trace_id") == format(ctx.trace_id, "032x")
        assert stored.pop("span_id") == format(ctx.span_id, "016x")
        assert stored == sent  # the same event: one mapping, both ways


@pytest.fixture(scope="session")
def js_client() -> Path:
    """The JS exporter from the npm registry, pinned by the committed package-lock.json."""
    installed = JS_CLIENT / "node_modules" / ".package-lock.json"
    lock = JS_CLIENT / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=JS_CLIENT, check=True, capture_output=True, timeout=300)
    return JS_CLIENT


def test_javascript_exporter_in_node_sends_otlp_json(collector, js_client):
    before = httpx.get(f"{collector.url}/healthz").json()  # the collector is shared
    node = subprocess.run(
        ["node", "send.mjs", collector.url, TOKEN, "30", "js-"], cwd=js_client,
        capture_output=True, text=True, timeout=120,
    )
    assert node.returncode == 0, node.stderr
    got = spool_events(collector.spool, "js-")
    assert len(got) == 31  # 30 named by event name, 1 by attribute; 1 refused, 1 skipped
    first = got[0]
    assert first["old"] == {"text": "v0", "tags": ["a", "b"]}  # an OTLP key-value list
    assert first["new"] == {"text": "v1", "tags": ["a"]}  # JSON text
    assert (first["base_version"], first["version"], first["actor"]) == (0, 1, "node-1")
    assert first["attrs"]["service.name"] == "template-service"
    assert first["event_id"].startswith("c-")
    blind = got[-1]
    assert "old" not in blind and blind["new"] == "done"  # a blind write, passed on as it is
    health = httpx.get(f"{collector.url}/healthz").json()
    assert health["skipped"] >= 1 and health["rejected"] >= 1
    assert {k: health[k] - before[k] for k in ("received", "skipped", "rejected")} == {
        "received": 31, "skipped": 1, "rejected": 1}  # this test's own, not earlier tests'


# --- OTLP by hand: both encodings, partial success ------------------------------------------


def _kv(key: str, value) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, dict):
        return KeyValue(key=key, value=AnyValue(kvlist_value=KeyValueList(
            values=[_kv(k, v) for k, v in value.items()])))
    if isinstance(value, list):
        return KeyValue(key=key, value=AnyValue(array_value=ArrayValue(
            values=[_kv("", v).value for v in value])))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _request(entity: str) -> ExportLogsServiceRequest:
    def record(attributes: dict, **fields) -> LogRecord:
        return LogRecord(attributes=[_kv(k, v) for k, v in attributes.items()], **fields)

    base = {"entity": entity, "field": "status", "writer": "workflow"}
    records = [
        record({**base, "ts": "2026-01-01T10:00:00Z", "old": "idle", "new": "running",
                "version": 2, "attrs": {"run": 7, "ratio": 0.5}},
               event_name="field.transition", trace_id=bytes(range(16)),
               span_id=bytes(range(8))),
        record({**base, "event": "field.transition", "old": '"running"', "new": [1, True]},
               time_unix_nano=1_767_261_600_123_456_789),  # ts from the record's time
        record({"entity": entity, "field": "status"}, event_name="field.transition"),
        record({**base, "ts": "2026-01-01T10:00:00Z", "new": float("nan")},
               event_name="field.transition"),
        record({"http.status": 200}, body=AnyValue(string_value="GET /")),
    ]
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=ResourceMessage(attributes=[_kv("service.name", "hand-made"),
                                             _kv("run", 0)]),
        scope_logs=[ScopeLogs(log_records=records)],
    )])


def _otlp_json(request: ExportLogsServiceRequest) -> bytes:
    """OTLP/JSON as the spec writes it: the protobuf JSON mapping, ids in hex."""
    message = json_format.MessageToDict(request)
    for resource_logs in message["resourceLogs"]:
        for record in resource_logs["scopeLogs"][0]["logRecords"]:
            for key in ("traceId", "spanId"):
                if key in record:
                    record[key] = base64.b64decode(record[key]).hex()
    return orjson.dumps(message)


def test_otlp_protobuf_and_json_give_the_same_events_and_partial_success(collector):
    answers = {}
    for encoding, body, media in [
        ("protobuf", _request("otlp-pb").SerializeToString(), "application/x-protobuf"),
        ("json", _otlp_json(_request("otlp-js")), "application/json"),
    ]:
        r = httpx.post(f"{collector.url}/v1/logs", content=body,
                       headers={**collector.headers, "Content-Type": media})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == media
        answers[encoding] = r.content

    response = ExportLogsServiceResponse.FromString(answers["protobuf"])
    assert response.partial_success.rejected_log_records == 2
    assert response.partial_success.error_message == (
        "log record 3: missing ts, writer; log record 4: the value nan has no JSON form")
    assert orjson.loads(answers["json"]) == {"partialSuccess": {
        "rejectedLogRecords": "2", "errorMessage": response.partial_success.error_message}}

    pb, js = spool_events(collector.spool, "otlp-pb"), spool_events(collector.spool, "otlp-js")
    for events in (pb, js):
        for e in events:
            e.pop("entity"), e.pop("event_id"), e["attrs"].pop("received_at")
    assert pb == js
    first, second = pb
    assert first["trace_id"] == bytes(range(16)).hex() and first["span_id"] == "0001020304050607"
    assert first["attrs"] == {"service.name": "hand-made", "run": 7, "ratio": 0.5}  # own wins
    assert (first["old"], first["new"], first["version"]) == ("idle", "running", 2)
    assert second["ts"] == "2026-01-01T10:00:00.123456Z"
    assert (second["old"], second["new"]) == ("running", [1, True])


# --- JSON Lines -------------------------------------------------------------------------------


def test_json_lines_answer_and_what_reaches_the_spool(collector):
    body = jsonl([
        transition("lines-A", 1),
        transition("lines-A", 2, event_id="mine-2"),
        {k: v for k, v in transition("lines-B", 3).items() if k != "old"},  # blind write
        {"event": "http.request", "status": 200},
        {"entity": "lines-C", "field": "f"},
    ]) + b"not json\n\n"
    r = httpx.post(f"{collector.url}/v1/events", content=body,
                   headers={**collector.headers, **JSONL})
    assert r.status_code == 200
    assert r.json() == {"received": 3, "skipped": 1, "rejected": 2, "reasons": [
        "line 5: missing ts, writer",
        "line 6: not valid JSON (invalid literal, expected 'null')",
    ]}
    a1, a2, b3 = spool_events(collector.spool, "lines-")
    assert a1["event_id"].startswith("c-") and a2["event_id"] == "mine-2"
    assert "old" not in b3
    assert a1["attrs"]["received_at"] == a2["attrs"]["received_at"]


def test_integers_beyond_64_bits_arrive_exactly_by_either_protocol(collector):
    """orjson reads 2**64 and beyond as a float: the collector once stored 10**21 + 1 as
    1e21, in JSON Lines and in an OTLP record's JSON text alike."""
    big = 10**21 + 1
    line = transition("bigint-lines", 1, old=[big], new={"n": -big})
    record = LogRecord(event_name="field.transition", attributes=[
        _kv(k, v) for k, v in {**transition("bigint-otlp", 2), "old": str(big),
                               "new": f"[{big}, 1.5]"}.items()])
    request = ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        scope_logs=[ScopeLogs(log_records=[record])])])
    for path, body, media in [
        ("/v1/events", json.dumps(line).encode() + b"\n", JSONL["Content-Type"]),
        ("/v1/logs", request.SerializeToString(), "application/x-protobuf"),
    ]:
        r = httpx.post(f"{collector.url}{path}", content=body,
                       headers={**collector.headers, "Content-Type": media})
        assert r.status_code == 200, r.text
    lines = [line for path in sorted(collector.spool.glob("*.jsonl*"))
             for line in path.read_bytes().splitlines() if b'"bigint-' in line]
    events = sorted(map(json.loads, lines), key=lambda e: e["entity"])  # json: ints exact
    assert [(e["entity"], e["old"], e["new"]) for e in events] == [
        ("bigint-lines", [big], {"n": -big}), ("bigint-otlp", big, [big, 1.5])]


def test_a_retried_request_gets_the_same_ids(collector):
    body = jsonl([transition("retry-A", i) for i in range(5)])
    for encoding in ("identity", "gzip"):
        content = gzip.compress(body) if encoding == "gzip" else body
        r = httpx.post(f"{collector.url}/v1/events", content=content,
                       headers={**collector.headers, "Content-Type": "application/jsonl",
                                "Content-Encoding": encoding})
        assert r.json()["received"] == 5
    events = spool_events(collector.spool, "retry-A")
    assert [e["event_id"] for e in events[:5]] == [e["event_id"] for e in events[5:]]
    assert len({e["event_id"] for e in events}) == 5


# --- refusals ---------------------------------------------------------------------------------

BOMB = gzip.compress(b"{}\n" * 200_000)  # 600 KB from a few hundred bytes


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "error"),
    [
        ("POST", "/v1/events", {**JSONL}, b"{}", 401, "missing or wrong bearer token"),
        ("POST", "/v1/events", {**JSONL, "Authorization": "Bearer nope"}, b"{}", 401,
         "missing or wrong bearer token"),
        ("POST", "/v1/metrics", {}, b"", 404, "no such path: /v1/metrics"),
        ("GET", "/v1/logs", {}, b"", 405, "method GET not allowed here"),
        ("PUT", "/v1/events", {}, b"", 405, "method PUT not allowed here"),
        ("POST", "/v1/events", {"Content-Type": "application/x-www-form-urlencoded"}, b"a=1",
         415, "content type must be application/x-ndjson or application/jsonl"),
        ("POST", "/v1/logs", {"Content-Type": "text/plain"}, b"x", 415,
         "content type must be application/x-protobuf or application/json"),
        ("POST", "/v1/events", {**JSONL, "Content-Encoding": "br"}, b"x", 415,
         "unsupported content encoding 'br' (gzip or none)"),
        ("POST", "/v1/events", {**JSONL}, b"{}\n" * 100_000, 413,
         "body over the limit of 262144 bytes"),
        ("POST", "/v1/events", {**JSONL, "Content-Encoding": "gzip"}, BOMB, 413,
         "decompressed body over the limit of 262144 bytes"),
        ("POST", "/v1/events", {**JSONL, "Content-Encoding": "gzip"}, b"\x1f\x8b nope", 400,
         "body is not valid gzip"),
        ("POST", "/v1/logs", {"Content-Type": "application/x-protobuf"}, b"\xff\xff\xff", 400,
         "not an ExportLogsServiceRequest"),
        ("POST", "/v1/logs", {"Content-Type": "application/json"}, b'{"resourceLogs": 5}', 400,
         "not an ExportLogsServiceRequest: resourceLogs is 5"),
        ("POST", "/v1/logs", {"Content-Type": "application/json"},
         b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "xyz"}]}]}]}', 400,
         "traceId is not hex: 'xyz'"),
    ],
)
def test_refusals_are_one_line_json_errors(collector, method, path, headers, body, status,
                                           error):
    auth = {} if "Authorization" in headers or status == 401 else collector.headers
    r = httpx.request(method, f"{collector.url}{path}", content=body,
                      headers={**auth, **headers})
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    assert r.content.count(b"\n") == 0
    assert r.json()["error"].startswith(error)
    if status == 405:
        assert r.headers["allow"] == "POST"
    if status == 401:
        assert r.headers["www-authenticate"] == "Bearer"


def test_cors_only_for_the_named_origin(collector):
    def preflight(origin: str) -> httpx.Response:
        return httpx.options(f"{collector.url}/v1/logs", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})

    ok = preflight(ORIGIN)
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    other = preflight("https://evil.example.com")
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    post = httpx.post(f"{collector.url}/v1/events", content=jsonl([transition("cors-A", 1)]),
                      headers={**collector.headers, **JSONL, "Origin": ORIGIN})
    assert post.headers["access-control-allow-origin"] == ORIGIN


# --- durability: kill -9, half-sent requests, SIGTERM ------------------------------------------


def _half_sent(url: str, body: bytes) -> socket.socket:
    """A POST whose headers and first half of the body are on the wire; the rest is not."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.sendall(
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
        b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body[: len(body) // 2]
    )
    return sock


def test_kill_9_after_a_200_loses_nothing_and_a_retry_doubles_nothing(tmp_path):
    spool, db = tmp_path / "spool", tmp_path / "s.duckdb"
    body = jsonl([transition(f"kill-{i % 7}", i) for i in range(500)])
    with CollectorProcess(spool, tmp_path) as c:
        r = httpx.post(f"{c.url}/v1/events", content=body, headers={**c.headers, **JSONL})
        assert r.json()["received"] == 500
        c.kill()  # at once after the answer: nothing had time to be sealed or flushed
    assert list(spool.glob("*.jsonl")) == []  # still .part: `audit ingest` seals it
    summary = ingest_spool(spool, db)
    assert (summary.ingested, summary.rejected) == (500, 0)

    with CollectorProcess(spool, tmp_path) as c:  # the client never saw the answer: again
        r = httpx.post(f"{c.url}/v1/events", content=body, headers={**c.headers, **JSONL})
        assert r.json()["received"] == 500
        no_cors = httpx.options(f"{c.url}/v1/events", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
        assert no_cors.status_code == 405  # no CORS unless an origin is named
        assert "access-control-allow-origin" not in no_cors.headers
        assert c.stop() == 0
    summary = ingest_spool(spool, db)
    assert (summary.ingested, summary.duplicates) == (0, 500)


def test_kill_9_during_a_half_sent_request_writes_none_of_it(tmp_path):
    spool, db = tmp_path / "spool", tmp_path / "s.duckdb"
    body = jsonl([transition("half-A", i) for i in range(300)])
    with CollectorProcess(spool, tmp_path) as c:
        sock = _half_sent(c.url, body)
        c.kill()
        sock.close()
    assert spool_events(spool) == []

    with CollectorProcess(spool, tmp_path) as c:
        _half_sent(c.url, body).close()  # the client gives up halfway: nothing written
        r = httpx.post(f"{c.url}/v1/events", content=body, headers={**c.headers, **JSONL})
        assert r.json()["received"] == 300
        assert httpx.get(f"{c.url}/healthz").json()["received"] == 300
        assert c.stop() == 0
    summary = ingest_spool(spool, db)
    assert (summary.ingested, summary.duplicates, summary.rejected) == (300, 0, 0)


def test_sigterm_lets_the_request_in_flight_finish_then_seals(tmp_path):
    spool = tmp_path / "spool"
    body = jsonl([transition("term-A", i) for i in range(200)])
    with CollectorProcess(spool, tmp_path) as c:
        sock = _half_sent(c.url, body)
        c.proc.send_signal(signal.SIGTERM)
        c.wait_for_log("stopping")
        sock.sendall(body[len(body) // 2 :])
        answer = sock.makefile("rb").read()
        sock.close()
        assert c.proc.wait(60) == 0
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and orjson.loads(payload)["received"] == 200
    assert list(spool.glob("*.part")) == []
    assert len(spool_events(spool, "term-A")) == 200


# --- the command line -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--no-auth", "--host", "0.0.0.0"],
         "--no-auth is only allowed on a loopback address, not 0.0.0.0"),
        ([], "give --token-file FILE (the bearer token clients send), "
             "or --no-auth on a loopback address"),
        (["--no-auth", "--token-file", "t"], "give --token-file or --no-auth, not both"),
        (["--token-file", "empty"], "the token file empty is empty"),
        (["--no-auth", "--cors-origin", "*"], "--cors-origin '*': name one origin as "
         "scheme://host[:port], e.g. https://app.example.com (no wildcard)"),
        (["--no-auth", "--max-body-mb", "0"], "--max-body-mb must be more than 0"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, error):
    monkeypatch.chdir(tmp_path)
    Path("t").write_text("x")
    Path("empty").write_text("\n")
    with pytest.raises(SystemExit) as done:
        audit_main(["serve", "--spool", "spool", *args])
    assert (done.value.code, capsys.readouterr().err) == (2, f"error: {error}\n")
    assert not Path("spool").exists() or not any(Path("spool").iterdir())


def test_two_collectors_share_one_spool(tmp_path):
    """One collector per core, behind a load balancer: each writes its own files."""
    spool, db = tmp_path / "spool", tmp_path / "s.duckdb"
    with CollectorProcess(spool, tmp_path) as a, CollectorProcess(spool, tmp_path) as b:
        for c, name in ((a, "two-a"), (b, "two-b")):
            body = jsonl([transition(name, i) for i in range(100)])
            r = httpx.post(f"{c.url}/v1/events", content=body, headers={**c.headers, **JSONL})
            assert r.json()["received"] == 100
        assert (a.stop(), b.stop()) == (0, 0)
    assert len(list(spool.glob("*.jsonl"))) == 2
    assert ingest_spool(spool, db).ingested == 200


def test_workers_share_the_port_and_each_seals_its_own_file(tmp_path):
    """--workers 2: two processes accept on one socket; SIGTERM to the parent stops both,
    each seals its spool file, and nothing any of them answered is lost."""
    spool, db = tmp_path / "spool", tmp_path / "w.duckdb"
    with CollectorProcess(spool, tmp_path, "--workers", "2") as c:
        pid = c.proc.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        assert len(children) == 2
        clients = [httpx.Client(headers={**c.headers, **JSONL}) for _ in range(8)]
        for n, client in enumerate(clients):
            body = jsonl([transition(f"worker-{n}", i) for i in range(50)])
            assert client.post(f"{c.url}/v1/events", content=body).json()["received"] == 50
        for client in clients:
            client.close()
        assert c.stop() == 0
    assert list(spool.glob("*.part")) == []
    assert ingest_spool(spool, db).ingested == 400
