"""DuckDB's allocator setting (collectors/allocator.py): asked for before DuckDB loads, by the
command line too, never over the user's own, never once it is too late to take effect.

Each case runs in a fresh interpreter: jemalloc reads the variable once, when DuckDB loads,
and this test process has loaded DuckDB already. What the setting saves is a benchmark
figure (bench/detect.py), not asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from collectors.allocator import ENV, SETTING

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k != ENV}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
        env={**clean, **env},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


REPORT = f"print(json.dumps({{'set': set_, 'value': os.environ.get({ENV!r})}}))"


def test_set_before_duckdb_loads():
    found = _run(f"""
import json, os
from collectors import allocator
set_ = allocator.configure()
import duckdb
{REPORT}""")
    assert found == {"set": True, "value": SETTING}


def test_left_alone_once_duckdb_is_loaded():
    found = _run(f"""
import json, os
import duckdb
from collectors import allocator
set_ = allocator.configure()
{REPORT}""")
    assert found == {"set": False, "value": None}


def test_the_users_own_value_is_kept():
    found = _run(f"""
import json, os
from collectors import allocator
set_ = allocator.configure()
{REPORT}""", **{ENV: "dirty_decay_ms:0"})
    assert found == {"set": False, "value": "dirty_decay_ms:0"}


def test_the_command_line_sets_it_before_its_command_loads_duckdb(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    found = _run(f"""
import json, os, sys
from frontends.cli import main
try:
    main(["ingest", {str(empty)!r}, "--db", {str(tmp_path / "a.duckdb")!r}])
except SystemExit as exc:
    status = exc.code
set_ = "duckdb" in sys.modules and status == 0  # the command did load DuckDB, and worked
{REPORT}""")
    assert found == {"set": True, "value": SETTING}
