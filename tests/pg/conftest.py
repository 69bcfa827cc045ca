"""A real PostgreSQL server for the capture tests: one per test session, a database per test.

The server is started with initdb/pg_ctl in a temporary folder, listening only on a Unix
socket there (no TCP), with fsync off, and stopped when the session ends. Debian's
`postgresql` is installed with apt when initdb is missing (CI runs as root on a clean machine),
as tests/frontends/test_report.py installs chromium.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg", reason="the pg extra is not installed")


@dataclass(frozen=True)
class Server:
    socket_dir: str
    port: int
    user: str

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} user={self.user} dbname={dbname}"


def _bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def _install_postgresql() -> Path:
    if not shutil.which("apt-get"):
        pytest.skip("PostgreSQL is not installed and this machine has no apt-get to install it")
    if os.geteuid() != 0:
        pytest.skip("PostgreSQL is not installed and installing it needs root (apt-get)")
    proc = subprocess.run(
        "apt-get update && apt-get install -y -o DPkg::Lock::Timeout=600 postgresql",
        shell=True, capture_output=True, text=True, timeout=1800, check=False,
    )
    bindir = _bindir()
    if proc.returncode != 0 or bindir is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        pytest.skip(f"installing postgresql with apt-get failed: {tail}")
    return bindir


def _free_port() -> int:
    # Only names the socket file (no TCP listener), but a free number keeps it unambiguous.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(args: list[str], user: str | None) -> None:
    # initdb refuses to run as root: as root, the server runs as the `postgres` OS user.
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False,
                          user=user)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed: {proc.stderr or proc.stdout}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    bindir = _bindir() or _install_postgresql()
    as_root = os.geteuid() == 0
    os_user = "postgres" if as_root else None
    # Not pytest's tmp_path: its parents are private to root, out of the postgres user's reach.
    root = Path(tempfile.mkdtemp(prefix="audit-pg-"))
    if as_root:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", _free_port()
    _run([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
          "--no-sync", "-E", "UTF8", "--locale=C"], os_user)
    options = f"-k {root} -p {port} -c listen_addresses='' -c fsync=off -c max_connections=50"
    _run([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"),
          "-w", "start"], os_user)
    try:
        yield Server(str(root), port, "postgres")
    finally:
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], os_user)
        shutil.rmtree(root, ignore_errors=True)


_names = itertools.count()


@pytest.fixture
def pg_dsn(pg_server: Server) -> Iterator[str]:
    """A fresh, empty database for one test; dropped after it."""
    name = f"t{os.getpid()}_{next(_names)}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield pg_server.dsn(name)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
