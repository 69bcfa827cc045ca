"""Fixtures shared by the test packages. Plain helpers live in instrument_support.py
(instrumentation) and sample_event.py (a minimal valid event)."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest
from instrument_support import ListSink, list_sink

import audit
from audit import health
from collectors.store import open_store


@pytest.fixture
def fresh_audit() -> Iterator[None]:
    """Default `audit` settings and zeroed counters before and after a test. Modules whose
    tests all configure `audit` use it for every test: ``pytestmark``."""
    audit.reset()
    health.reset()
    yield
    audit.reset()
    health.reset()


@pytest.fixture
def sink(fresh_audit) -> ListSink:
    """A `ListSink` configured as the only sink, without OpenTelemetry."""
    return list_sink()


@pytest.fixture
def con(tmp_path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh store file, closed after the test."""
    connection = open_store(tmp_path / "store.duckdb")
    yield connection
    connection.close()
