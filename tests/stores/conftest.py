"""Fixtures for the ClickHouse store tests: real chdb stores in temporary folders.

chdb holds one data folder per process at a time, so a test opens a store, uses it and
closes it before another opens; module-scoped fixtures do their work inside one opening.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # histories.py

pytest.importorskip("chdb", reason="the clickhouse extra is not installed")
