"""``audit serve``: the HTTP collector any language can send transitions to.

A Starlette app on uvicorn (docs/contract.md §5). Each POST is read within the body limit,
decompressed within it too (a small gzip body can expand a thousandfold), decoded into
events at the door (`collectors.serve_intake`, `collectors.otlp`), then written into the
spool and fsynced (`SpoolSink.write_durably`) before the answer: a 2xx means the events are
on disk. Decoding and writing run in a worker thread, so the event loop keeps reading
other requests meanwhile.

Secure by default: a bearer token on every POST, compared in constant time (``--no-auth``
only on a loopback address); no CORS unless origins are named; one-line JSON errors.
On SIGTERM (or Ctrl-C) uvicorn stops accepting and lets requests in flight finish; then
the spool file is sealed and the process exits 0.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import os
import signal
import socket
import sys
import threading
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from audit.errors import AuditError
from collectors import otlp
from collectors.serve_intake import Intake, intake_lines, received_now
from collectors.spool import SpoolSink

DEFAULT_PORT = 4318  # OTLP/HTTP's port
DEFAULT_MAX_BODY_MB = 4.0
DRAIN_FACTOR = 8  # an oversized body is read (and dropped) up to this many limits, so that
# the client sees the 413 instead of a connection reset while it is still sending
SEAL_AFTER_S = 10.0  # a spool file is sealed (visible to ingest and --watch) this often
GRACE_S = 10.0  # how long requests in flight may take to finish once SIGTERM came
MAX_CONNECTIONS = 256

_BODY_READ = "conflict_audit.body_read"  # in the ASGI scope: the request body was taken
LOGS_TYPES = {"application/x-protobuf": "protobuf", "application/json": "json"}
EVENTS_TYPES = ("application/x-ndjson", "application/jsonl")


@dataclass
class Counters:
    """What the collector took since it started (``GET /healthz`` shows them)."""

    received: int = 0
    skipped: int = 0
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, intake: Intake) -> None:
        with self.lock:
            self.received += intake.events
            self.skipped += intake.skipped
            self.refused += intake.refused


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps({"error": message}), status, headers=headers, media_type="application/json"
    )


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def create_app(
    spool: SpoolSink,
    *,
    token: str | None,
    max_body_bytes: int,
    cors_origins: Sequence[str] = (),
) -> Starlette:
    """The collector as an ASGI app. ``token`` None: no authentication (loopback only, which
    `serve` checks). The spool is sealed when the app shuts down."""
    counters = Counters()
    expected = token.encode() if token is not None else None

    def authorize(request: Request) -> None:
        if expected is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise HTTPException(401, "missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    async def read_body(request: Request) -> Callable[[], bytes]:
        """Reads the body within the limit; returns what decompresses it (in the worker
        thread, so that a large body does not hold up the event loop)."""
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            raise HTTPException(415, f"unsupported content encoding {encoding!r} (gzip or none)")
        chunks, size = [], 0
        request.scope[_BODY_READ] = True
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                if size > DRAIN_FACTOR * max_body_bytes:
                    break
                continue
            chunks.append(chunk)
        if size > max_body_bytes:
            raise HTTPException(413, f"body over the limit of {max_body_bytes} bytes")
        body = b"".join(chunks)
        if encoding == "gzip":
            return lambda: _gunzip(body, max_body_bytes)
        return lambda: body

    def store(intake: Intake) -> None:
        if intake.events:
            try:
                spool.write_durably(bytes(intake.data), intake.events)
            except OSError as exc:
                raise HTTPException(503, f"the spool cannot take events: {exc}",
                                    headers={"Retry-After": "1"}) from exc
        counters.add(intake)

    async def logs(request: Request) -> Response:
        authorize(request)
        media = _media_type(request)
        encoding = LOGS_TYPES.get(media)
        if encoding is None:
            raise HTTPException(
                415, "content type must be application/x-protobuf or application/json"
            )
        body = await read_body(request)

        def take() -> bytes:
            try:
                intake = otlp.intake_logs(body(), encoding, received_now())
            except otlp.OTLPDecodeError as exc:
                raise HTTPException(400, str(exc)) from exc
            store(intake)
            return otlp.encode_response(intake, encoding)

        # Answered in the request's encoding, under the media type it came with.
        return Response(await run_in_threadpool(take), 200, media_type=media)

    async def events(request: Request) -> Response:
        authorize(request)
        if _media_type(request) not in EVENTS_TYPES:
            raise HTTPException(
                415, "content type must be application/x-ndjson or application/jsonl"
            )
        body = await read_body(request)

        def take() -> dict[str, Any]:
            intake = intake_lines(body(), received_now())
            store(intake)
            answer: dict[str, Any] = {
                "received": intake.events, "skipped": intake.skipped, "rejected": intake.refused,
            }
            if intake.refused:
                answer["reasons"] = intake.reasons
            return answer

        return _json(await run_in_threadpool(take))

    async def healthz(_request: Request) -> Response:
        if not spool.writable():
            return _error(503, f"the spool {spool.directory} is not writable")
        with counters.lock:
            return _json({"status": "ok", "spool": str(spool.directory),
                          "received": counters.received, "skipped": counters.skipped,
                          "rejected": counters.refused})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if not request.scope.get(_BODY_READ):
            # Refused before its body was read (401, 415, …): read it anyway, within bounds,
            # or closing the connection on unread data may reset it before the answer.
            request.scope[_BODY_READ] = True
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > DRAIN_FACTOR * max_body_bytes:
                    break
        detail = exc.detail
        if exc.status_code == 404:
            detail = f"no such path: {request.url.path} (POST /v1/logs, POST /v1/events)"
        elif exc.status_code == 405:
            detail = f"method {request.method} not allowed here"
        return _error(exc.status_code, detail, dict(exc.headers or {}))

    async def client_gone(_request: Request, _exc: Exception) -> Response:
        return Response(status_code=400)  # never sent: nobody is listening

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        spool.close()  # after the requests in flight: uvicorn waited for them

    middleware = []
    if cors_origins:
        middleware.append(Middleware(
            CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["POST"],
            allow_headers=["authorization", "content-type", "content-encoding"],
        ))
    return Starlette(
        routes=[
            Route("/v1/logs", logs, methods=["POST"]),
            Route("/v1/events", events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        middleware=middleware,
        exception_handlers={HTTPException: http_error, ClientDisconnect: client_gone},
        lifespan=lifespan,
    )


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def _gunzip(body: bytes, limit: int) -> bytes:
    """Decompress a gzip body (members one after another too), refusing to produce more
    than ``limit`` bytes: the check is on the output as it grows, not on a header."""
    out: list[bytes] = []
    produced = 0
    rest = body
    while rest:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            piece = inflater.decompress(rest, limit + 1 - produced)
        except zlib.error as exc:
            raise HTTPException(400, f"body is not valid gzip: {exc}") from exc
        produced += len(piece)
        if produced > limit or inflater.unconsumed_tail:
            raise HTTPException(413, f"decompressed body over the limit of {limit} bytes")
        if not inflater.eof:
            raise HTTPException(400, "body is not valid gzip: it ends too soon")
        out.append(piece)
        rest = inflater.unused_data
    return b"".join(out)


# --- running it -------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback one (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_origin(origin: str) -> str:
    """A CORS origin as browsers send it: scheme://host[:port], nothing else."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
        raise AuditError(
            f"--cors-origin {origin!r}: name one origin as scheme://host[:port], "
            "e.g. https://app.example.com (no wildcard)"
        )
    return origin.rstrip("/")


def read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditError(f"cannot read the token file {path}: {exc}") from exc
    if not token:
        raise AuditError(f"the token file {path} is empty")
    return token


def _listen(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, *_ = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        # With proto IPPROTO_TCP (not 0) asyncio sets TCP_NODELAY on each connection; without
        # it a keep-alive answer waited ~40 ms for the client's delayed ACK.
        sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        raise AuditError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


class _Server(uvicorn.Server):
    def handle_exit(self, sig: int, frame: Any) -> None:
        if not self.should_exit:
            print("audit serve: stopping: no new connections; requests in flight finish, "
                  "then the spool file is sealed", file=sys.stderr, flush=True)
        super().handle_exit(sig, frame)


def serve(
    spool_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    token: str | None,
    max_body_mb: float = DEFAULT_MAX_BODY_MB,
    cors_origins: Sequence[str] = (),
    workers: int = 1,
    announce: Callable[[str], None] = lambda _: None,
) -> int:
    """Run the collector until SIGTERM or Ctrl-C; returns the exit status (0).

    ``token`` None means no authentication, which only a loopback ``host`` may have.
    ``announce`` is told the address once the socket listens (port 0 picks a free one).
    ``workers`` > 1 forks that many processes sharing the listening socket (the kernel
    spreads connections over them), each with its own spool file: decoding OTLP is CPU
    work, and one process uses one core.
    """
    if token is None and not is_loopback(host):
        raise AuditError(f"--no-auth is only allowed on a loopback address, not {host}")
    origins = [check_origin(o) for o in cors_origins]
    if max_body_mb <= 0:
        raise AuditError("--max-body-mb must be more than 0")
    if workers < 1:
        raise AuditError("--workers must be 1 or more")
    sock = _listen(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host

    def run() -> int:
        return _run(sock, spool_dir, token, int(max_body_mb * 1024 * 1024), origins)

    try:
        announce(f"http://{shown}:{bound}")
        return run() if workers == 1 else _fork_workers(workers, run)
    finally:
        sock.close()


def _run(
    sock: socket.socket, spool_dir: str | Path, token: str | None, max_body_bytes: int,
    origins: list[str],
) -> int:
    """One collector process on a listening socket, until SIGTERM or Ctrl-C."""
    spool = SpoolSink(spool_dir, fsync=True, max_age_s=SEAL_AFTER_S, name="serve")
    app = create_app(spool, token=token, max_body_bytes=max_body_bytes, cors_origins=origins)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", server_header=False,
        timeout_graceful_shutdown=GRACE_S, limit_concurrency=MAX_CONNECTIONS,
    )
    server = _Server(config)
    # uvicorn hands a signal it handled back to the handler in place before it: make that
    # one a no-op, so that a graceful stop ends with `return 0`, not death by the signal.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        spool.close()
    if not server.started:
        print("error: the collector did not start", file=sys.stderr)
        return 2
    return 0


def _fork_workers(workers: int, run: Callable[[], int]) -> int:
    """Fork ``workers`` processes that each ``run()``; pass SIGTERM/SIGINT on to them and
    return the worst exit status once all have stopped (each seals its own spool file)."""
    children: list[int] = []
    stopping = False

    def forward(sig: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(workers):
            pid = os.fork()
            if pid == 0:  # a worker: serve, then leave without the parent's exit handlers
                status = 2
                try:
                    for sig, handler in previous.items():
                        signal.signal(sig, handler)
                    status = run()
                finally:
                    os._exit(status)
            children.append(pid)
        if stopping:  # a signal came while forking: the workers started since get it too
            forward(signal.SIGTERM, None)
        statuses = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return max((s if s >= 0 else 2) for s in statuses)
