"""A real PostgreSQL server for the capture tests: one per test run, a database per test.

The server (tests/pg_server.py) listens only on a Unix socket in a temporary folder, with
fsync off, and is stopped when the test run ends. Debian's `postgresql` is installed with apt
when initdb is missing (CI runs as root on a clean machine), as tests/frontends/test_report.py
installs chromium.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest
from pg_server import Server, apt_install, bindir, temporary_server

psycopg = pytest.importorskip("psycopg", reason="the pg extra is not installed")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    try:
        binaries = bindir() or apt_install("postgresql", bindir)
    except LookupError as exc:
        pytest.skip(str(exc))
    with temporary_server(binaries, "max_connections=50") as server:
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
