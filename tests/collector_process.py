"""`audit serve` in a child process, as the collector's tests and bench/serve.py run it.

It listens on a port the system picks (``--port 0``) and says which on its first line of
stderr; the collector is ready once ``GET /healthz`` answers (the socket listens before
the server runs, so that request waits rather than fails). Nothing here sleeps.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-token-0123456789"


class CollectorProcess:
    """``with CollectorProcess(spool, workdir) as c: httpx.post(c.url + "/v1/events", …)``.

    ``token`` None runs with ``--no-auth``. Leaving the block kills a collector still
    running; `stop` ends it as an operator would (SIGTERM) and returns its exit status."""

    def __init__(self, spool: Path, workdir: Path, *args: str, token: str | None = TOKEN):
        self.spool = spool
        self.token = token
        self.args = list(args)
        self.workdir = workdir
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.log: list[str] = []
        self._logged = threading.Condition()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def start(self) -> CollectorProcess:
        auth = ["--no-auth"]
        if self.token is not None:
            token_file = self.workdir / "token"
            token_file.write_text(self.token + "\n")
            auth = ["--token-file", str(token_file)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "frontends.cli", "serve", "--spool", str(self.spool),
             "--port", "0", *auth, *self.args],
            cwd=ROOT, stderr=subprocess.PIPE, text=True,
        )
        first = self.proc.stderr.readline()
        if "listening on " not in first:
            self.proc.wait()
            raise RuntimeError(f"audit serve did not start: {first}{self.proc.stderr.read()}")
        self.url = first.split("listening on ")[1].split()[0]
        threading.Thread(target=self._drain, daemon=True).start()
        httpx.get(f"{self.url}/healthz", timeout=60).raise_for_status()
        return self

    def _drain(self) -> None:
        for line in self.proc.stderr:
            with self._logged:
                self.log.append(line)
                self._logged.notify_all()

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        """Until the collector has written ``text`` on stderr."""
        with self._logged:
            assert self._logged.wait_for(lambda: any(text in line for line in self.log),
                                         timeout), self.log

    def stop(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def __enter__(self) -> CollectorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
