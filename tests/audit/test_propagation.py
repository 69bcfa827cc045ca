"""The writer follows a request across services in W3C baggage: two real FastAPI services on
uvicorn, a real instrumented httpx call between them."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from instrument_support import ListSink
from opentelemetry import baggage
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

import audit
from audit.propagation import WriterFromBaggage

pytestmark = pytest.mark.usefixtures("fresh_audit")


class Service:
    """An ASGI app served by uvicorn in a thread on a free port of 127.0.0.1."""

    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        # Listening before uvicorn starts: a request sent before its loop runs waits in the
        # backlog instead of being refused (bound but not yet listening, it was refused).
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, args=([self.sock],), daemon=True)

    def __enter__(self) -> Service:
        self.thread.start()
        httpx.get(f"{self.url}/healthz", timeout=30).raise_for_status()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


def blocks_service() -> FastAPI:
    """Service B: applies block edits, instrumented; takes the writer from baggage."""
    app = FastAPI()
    app.add_middleware(WriterFromBaggage)

    @app.get("/healthz")
    def healthz() -> dict:
        return {}

    @app.post("/blocks/{block_id}")
    async def edit(block_id: str) -> dict:
        audit.record(block_id, {"content": "old"}, {"content": "new"})
        return {"writer": getattr(audit.current_writer(), "name", None)}

    @app.post("/blocks/{block_id}/sync")
    def edit_in_a_thread(block_id: str) -> dict:  # FastAPI runs `def` in a worker thread
        audit.record(block_id, {"status": "a"}, {"status": "b"})
        return {"writer": getattr(audit.current_writer(), "name", None)}

    return app


def edge_service(blocks_url: str) -> FastAPI:
    """Service A: calls B with an instrumented httpx client."""
    app = FastAPI()
    app.add_middleware(WriterFromBaggage)
    client = httpx.AsyncClient()
    HTTPXClientInstrumentor.instrument_client(client)

    @app.get("/healthz")
    def healthz() -> dict:
        return {}

    @app.post("/edit/{block_id}")
    async def edit(block_id: str, user: str | None = None) -> dict:
        if user:  # the edge knows who is writing
            with audit.writer("user", actor=user):
                r = await client.post(f"{blocks_url}/blocks/{block_id}")
        else:  # it came with the request
            r = await client.post(f"{blocks_url}/blocks/{block_id}/sync")
        return r.json()

    return app


@pytest.fixture(scope="module")
def services() -> Iterator[tuple[str, str]]:
    with Service(blocks_service()) as b, Service(edge_service(b.url)) as a:
        yield a.url, b.url


def test_the_writer_set_at_the_edge_reaches_the_next_service(services, sink: ListSink):
    edge, _ = services
    r = httpx.post(f"{edge}/edit/block-A", params={"user": "u-7"})
    assert r.json() == {"writer": "user"}
    (event,) = sink.events
    assert (event["entity"], event["writer"], event["actor"]) == ("block-A", "user", "u-7")


def test_baggage_from_the_caller_runs_two_hops(services, sink: ListSink):
    edge, _ = services
    r = httpx.post(f"{edge}/edit/block-B",
                   headers={"baggage": "audit.writer=workflow,audit.actor=engine%201,other=x"})
    assert r.json() == {"writer": "workflow"}
    (event,) = sink.events
    assert (event["writer"], event["actor"], event["field"]) == ("workflow", "engine 1", "status")


def test_a_request_without_baggage_has_no_writer(services, sink: ListSink):
    _, blocks = services
    assert httpx.post(f"{blocks}/blocks/block-C").json() == {"writer": None}
    bad = httpx.post(f"{blocks}/blocks/block-C", headers={"baggage": "audit.writer=" + "w" * 300})
    assert bad.json() == {"writer": None}
    assert [e["writer"] for e in sink.events] == ["unknown", "unknown"]


def test_writer_scopes_set_and_restore_baggage(fresh_audit):
    assert baggage.get_baggage("audit.writer") is None
    with audit.writer("workflow", actor="engine-1"):
        assert baggage.get_all() == {"audit.writer": "workflow", "audit.actor": "engine-1"}
        with audit.writer("user"):
            assert baggage.get_all() == {"audit.writer": "user"}
        assert baggage.get_baggage("audit.actor") == "engine-1"

    async def task(name: str) -> object:
        with audit.writer(name):
            await asyncio.sleep(0)
            return baggage.get_baggage("audit.writer")

    async def both() -> list:
        return await asyncio.gather(task("a"), task("b"))

    assert asyncio.run(both()) == ["a", "b"]
    assert baggage.get_all() == {}


def _modules_loaded_by(code: str, modules: str) -> str:
    """Which of ``modules`` (a Python expression) a fresh interpreter has after ``code``."""
    script = f"import sys\n{code}\nprint(sorted(m for m in sys.modules if {modules}))\n"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True).stdout


def test_without_propagation_a_writer_scope_leaves_opentelemetry_alone():
    code = "import audit\nwith audit.writer('user', actor='u'):\n    pass"
    assert _modules_loaded_by(code, "m.startswith('opentelemetry')") == "[]\n"


def test_the_middleware_needs_only_the_base_install():
    heavy = "m in ('duckdb', 'typer', 'starlette', 'fastapi', 'collectors')"
    assert _modules_loaded_by("import audit.propagation", heavy) == "[]\n"
