"""Fixtures for the detector tests; the history helpers are in detect_histories.py."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# The tests of this folder import their helpers as a plain module.
sys.path.insert(0, str(Path(__file__).parent))

from detect_histories import load  # noqa: E402

from collectors.store import open_store  # noqa: E402


@pytest.fixture
def store(tmp_path) -> Callable[..., Any]:
    """store(events, seed=None) -> a read-only connection to a fresh store holding them."""
    opened = []
    counter = iter(range(10_000))

    def make(events: list[dict[str, Any]], *, seed: int | None = None,
             extra_lines: list[str] = ()):
        db = tmp_path / f"store{next(counter)}.duckdb"
        load(db, events, seed=seed, extra_lines=extra_lines)
        con = open_store(db, read_only=True)
        opened.append(con)
        return con

    yield make
    for con in opened:
        con.close()
