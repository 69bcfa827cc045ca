"""A check under a memory limit smaller than its sort spills to disk, or sorts in buckets that
fit, and finds the same; one far too small for it fails as one line that says what to do
(collectors/store.py, MEMORY_LIMIT, AUDIT_MEMORY_LIMIT; queries/runner.py, entity_buckets)."""

from __future__ import annotations

import json
import math

import pytest
from cli_support import run
from planted_store import EXPECTED_PER_1000, expected, generate

from collectors.store import open_store
from queries.commit_order import sql
from queries.runner import DETECTORS, SORT_BYTES_PER_EVENT, check, entity_buckets

EVENTS = 200_000


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("planted") / "planted.duckdb"
    generate(path, EVENTS)
    return path


def _profiled_build(store, tmp_path, monkeypatch, limit: str) -> dict:
    """The commit order built under ``limit`` as the SQL files build it in the DuckDB shell,
    in one bucket, two threads (memory grows with threads): DuckDB's own account of the
    statement that sorts (its JSON profile, `system`), the one before the script's last."""
    monkeypatch.setenv("AUDIT_MEMORY_LIMIT", limit)
    profile = tmp_path / f"profile-{limit}.json"
    with open_store(store, read_only=True) as con:
        con.execute("SET threads = 2")
        con.execute("SET VARIABLE audit_suspects_only = true")
        con.execute(sql("defaults"))
        con.execute("PRAGMA enable_profiling = 'json'")
        con.execute("PRAGMA profiling_output = ?", [str(profile)])
        *sorting, _lookup = con.extract_statements(sql("transitions"))
        for statement in sorting:
            con.execute(statement.query)
    return json.loads(profile.read_text())["system"]


def test_a_check_under_a_small_limit_spills_and_finds_the_same(store, tmp_path, monkeypatch):
    free = _profiled_build(store, tmp_path, monkeypatch, "2GB")
    tight = _profiled_build(store, tmp_path, monkeypatch, "40MB")
    # The limit is below what the sort holds when free, so it had to spill.
    assert free["peak_buffer_memory"] > 40e6 and free["total_bytes_spilled"] == 0
    assert tight["total_bytes_spilled"] > 0

    # check itself sorts in buckets that fit the limit: each a third of it at most
    found, buckets = {}, {}
    for limit in ("2GB", "40MB"):
        monkeypatch.setenv("AUDIT_MEMORY_LIMIT", limit)
        with open_store(store, read_only=True) as con:
            con.execute("SET threads = 2")
            buckets[limit] = entity_buckets(con)
            told: list[tuple[int, int]] = []
            findings = check(con, progress=lambda *step, told=told: told.append(step))
            found[limit] = [(f.detector, f.entity, f.field, f.event_ids) for f in findings]
            # progress is told after each bucket's sort, each detector and the witnesses'
            # lookup, when there are several buckets (a small check is over at once)
            n = buckets[limit]
            steps = n + len(DETECTORS) + 1
            assert told == ([(i, steps) for i in range(1, steps + 1)] if n > 1 else [])
    per_bucket = 40 * 10**6 / 3 / SORT_BYTES_PER_EVENT
    assert buckets == {"2GB": 1, "40MB": math.ceil(EVENTS / per_bucket)} and buckets["40MB"] > 1
    assert found["40MB"] == found["2GB"]
    per_detector = {d: sum(1 for f in found["40MB"] if f[0] == d) for d in EXPECTED_PER_1000}
    assert per_detector == expected(EVENTS)


def test_too_little_memory_is_one_line_that_says_what_to_do(store):
    result = run("check", "--db", store, env={"AUDIT_MEMORY_LIMIT": "8MB"})
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: database: Out of Memory Error: ")
    assert line.endswith("; a command may hold 8MB of memory: set AUDIT_MEMORY_LIMIT higher "
                         "(e.g. 2GB)")
