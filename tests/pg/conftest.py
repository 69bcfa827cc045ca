"""A real PostgreSQL server for the capture tests: one per test session, a database per test.

The server (tests/pg_server.py) listens only on a Unix socket in a temporary folder, with
fsync off, and is stopped when the session ends. Debian's `postgresql` is installed with apt
when initdb is missing (CI runs as root on a clean machine), as tests/frontends/test_report.py
installs chromium.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_server import Server, bindir, temporary_server

psycopg = pytest.importorskip("psycopg", reason="the pg extra is not installed")


def _install_postgresql() -> Path:
    if not shutil.which("apt-get"):
        pytest.skip("PostgreSQL is not installed and this machine has no apt-get to install it")
    if os.geteuid() != 0:
        pytest.skip("PostgreSQL is not installed and installing it needs root (apt-get)")
    proc = subprocess.run(
        "apt-get update && apt-get install -y -o DPkg::Lock::Timeout=600 postgresql",
        shell=True, capture_output=True, text=True, timeout=1800, check=False,
    )
    found = bindir()
    if proc.returncode != 0 or found is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        pytest.skip(f"installing postgresql with apt-get failed: {tail}")
    return found


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    with temporary_server(bindir() or _install_postgresql(), "max_connections=50") as server:
        yield server


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
