"""A small Sentry-compatible envelope receiver for tests: the real sentry-sdk talks HTTP to it.

It accepts ``POST /api/<project>/envelope/`` (gzip or plain), parses the envelope (one JSON
header line, then per item a JSON item header and its payload) and keeps what arrived. What
it answers is scripted: ``respond(status, headers, times)`` queues answers; when the queue is
empty it answers 200; ``hold_answers()`` keeps every answer back (the envelope is stored) until
``release_answers()``, as a Sentry whose answers get lost on the way back. Tests wait for
arrivals with ``wait_for`` (a condition variable with a deadline), never by sleeping.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Envelope:
    headers: dict[str, Any]
    items: list[tuple[dict[str, Any], Any]]  # (item header, payload: parsed JSON or bytes)
    status: int  # what the receiver answered


@dataclass
class _Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None  # default: {"id": <event id>}


def parse_envelope(body: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], Any]]]:
    """Split a serialized envelope into its header and (item header, payload) pairs."""
    header_line, _, rest = body.partition(b"\n")
    headers = json.loads(header_line)
    items: list[tuple[dict[str, Any], Any]] = []
    while rest.strip():
        item_line, _, rest = rest.partition(b"\n")
        item_header = json.loads(item_line)
        length = item_header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length:]
            rest = rest.removeprefix(b"\n")
        try:
            parsed: Any = json.loads(payload)
        except ValueError:
            parsed = payload
        items.append((item_header, parsed))
    return headers, items


class SentryReceiver:
    """Start with ``with SentryReceiver() as rx:``; point the SDK at ``rx.dsn``."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.requests = 0
        self._answers: list[_Answer] = []
        self._cond = threading.Condition()
        self._answering = threading.Event()
        self._answering.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                answer = receiver._next_answer()
                headers, items = parse_envelope(body)
                # Stored before answering, as Sentry does: an answer lost on the way back
                # (the client gave up) leaves the event stored.
                with receiver._cond:
                    receiver.requests += 1
                    receiver.envelopes.append(Envelope(headers, items, answer.status))
                    receiver._cond.notify_all()
                receiver._answering.wait(30)
                reply = json.dumps(
                    answer.body if answer.body is not None else {"id": headers.get("event_id")}
                ).encode()
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def dsn(self) -> str:
        return f"http://key@127.0.0.1:{self._server.server_address[1]}/1"

    def __enter__(self) -> SentryReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._answering.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def respond(
        self,
        status: int,
        headers: dict[str, str] | None = None,
        times: int = 1,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (then 200 again)."""
        with self._cond:
            self._answers.extend(
                _Answer(status, dict(headers or {}), body) for _ in range(times)
            )

    def hold_answers(self) -> None:
        """Store what arrives but answer nothing until ``release_answers``."""
        self._answering.clear()

    def release_answers(self) -> None:
        self._answering.set()

    def clear_answers(self) -> None:
        """Forget queued answers: answer 200 from now on."""
        with self._cond:
            self._answers.clear()

    def _next_answer(self) -> _Answer:
        with self._cond:
            return self._answers.pop(0) if self._answers else _Answer(200)

    def items(self, item_type: str, *, accepted_only: bool = True) -> list[Any]:
        """Payloads of every item of ``item_type`` (``event``, ``check_in``) received."""
        with self._cond:
            return [
                payload
                for env in self.envelopes
                if not accepted_only or 200 <= env.status < 300
                for header, payload in env.items
                if header.get("type") == item_type
            ]

    def events(self) -> list[dict[str, Any]]:
        return self.items("event")

    def checkins(self) -> list[dict[str, Any]]:
        return self.items("check_in")

    def wait_for(self, predicate: Callable[[SentryReceiver], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate(self)`` holds or the deadline passes; returns whether it held."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout=timeout)


def refusing_dsn() -> tuple[str, socket.socket]:
    """A DSN whose port refuses connections: bound (so nobody else takes it), not listening.

    Keep the returned socket open for as long as the DSN must keep refusing; close it after.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return f"http://key@127.0.0.1:{sock.getsockname()[1]}/1", sock
