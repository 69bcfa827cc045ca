"""Readers never crash on a row already in a store, whatever wrote it: values DuckDB's JSON
type takes but strict JSON does not, numbers beyond 64 bits, timestamps beyond the years
Python holds. The rows go straight into the events table, past the ingest checks."""

from __future__ import annotations

import json
import math

import pytest

from collectors.store import open_store
from frontends.report.model import build_report
from queries import owners, replay, timeline
from queries.runner import check

ODD_VALUES = ["NaN", "Infinity", "-Infinity", "1e400", "123456789012345678901234567890",
              "nan", "[NaN, 1]"]
ODD_TIMES = ["0001-01-01 00:00:00+00", "9999-12-31 23:59:59.999999+00", "infinity",
             "-infinity", "294247-01-01 00:00:00+00"]

INSERT = """
INSERT INTO events (seq, event_id, ts, entity, field, change, old, new, writer, version,
                    base_version, source_ts)
VALUES (?, ?, ?::TIMESTAMPTZ, ?, 'v', ?, ?, ?, ?, ?, ?, ?::TIMESTAMPTZ)
"""


@pytest.fixture(scope="module")
def odd_store(tmp_path_factory):
    db = tmp_path_factory.mktemp("odd") / "odd.duckdb"
    con = open_store(db)
    seq = 0

    def add(entity, ts, change, old, new, writer, version=None, base=None, source=None):
        nonlocal seq
        seq += 1
        con.execute(INSERT, [seq, f"{entity}-{seq}", ts, entity, change, old, new, writer,
                             version, base, source])

    # odd values, in every place a detector compares or shows them
    for n, value in enumerate(ODD_VALUES):
        entity = f"values-{n}"
        add(entity, "2026-01-01 00:00:00+00", "added", None, value, "user", 1, 0)
        add(entity, "2026-01-01 00:00:05+00", "changed", '"x"', value, "polling_sync", 2, 0,
            "2025-01-01 00:00:00+00")
        add(entity, "2026-01-01 00:00:07+00", "changed", value, '"y"', "user", 2, 1)
    # odd times, as ts and as source_ts
    for n, moment in enumerate(ODD_TIMES):
        entity = f"times-{n}"
        add(entity, moment, "added", None, '"a"', "user", source=moment)
        add(entity, "2026-01-01 00:00:00+00", "changed", '"zz"', '"b"', "polling_sync",
            source=moment)
    con.close()
    con = open_store(db, read_only=True)
    yield con
    con.close()


def test_check_reads_every_odd_row(odd_store):
    findings = check(odd_store)
    entities = {f.entity for f in findings}
    assert {f"values-{n}" for n in range(len(ODD_VALUES))} <= entities
    assert {f"times-{n}" for n in range(len(ODD_TIMES))} <= entities
    for f in findings:
        json.dumps(f.to_dict())  # the CLI's --format json
        assert f.message


def test_values_keep_what_they_were(odd_store):
    rows = {r["event_id"]: r for r in timeline(odd_store, "values-0")}
    assert math.isnan(rows["values-0-1"]["new"])
    big = timeline(odd_store, "values-4")[0]["new"]
    assert big == 123456789012345678901234567890  # every digit, not a float
    assert timeline(odd_store, "values-3")[0]["new"] == math.inf
    assert timeline(odd_store, "values-5")[0]["new"] == "nan"  # not JSON: kept as text
    lost = [f for f in check(odd_store, entity="values-4") if f.detector == "lost_update"]
    assert "123456789012345678901234567890" in lost[0].message


def test_times_beyond_python_stay_as_duckdb_wrote_them(odd_store):
    firsts = [{r["event_id"]: r for r in timeline(odd_store, f"times-{n}")}[f"times-{n}-{seq}"]
              for n, seq in zip(range(len(ODD_TIMES)), range(22, 40, 2), strict=False)]
    assert firsts[0]["ts"] == "0001-01-01T00:00:00Z"
    assert firsts[1]["ts"] == "9999-12-31T23:59:59.999999Z"
    assert [firsts[2]["ts"], firsts[3]["ts"]] == ["infinity", "-infinity"]
    assert firsts[4]["ts"].startswith("294247-01-01")
    [chain] = [f for f in check(odd_store, entity="times-2") if f.detector == "chain_break"]
    assert chain.last_ts == "infinity"


def test_replay_owners_and_report_read_them_too(odd_store):
    assert replay(odd_store, "values-4", "2026-01-01T00:00:06Z") == {
        "v": 123456789012345678901234567890}
    assert replay(odd_store, "times-3", "2026-01-02T00:00:00Z") == {"v": "b"}
    assert owners(odd_store)[0]["field"] == "v"
    report = build_report(odd_store, check(odd_store), top=100)
    assert len(report.shown) == len({(f.entity, f.field) for f in report.findings})
    assert all(lane.writes for group in report.shown for lane in group.swimlanes)


def test_a_finding_writes_its_witnesses_times_as_the_timeline_does(odd_store):
    for n in range(len(ODD_TIMES)):
        shown = {r["event_id"]: r["ts"] for r in timeline(odd_store, f"times-{n}")}
        witnesses = [w for f in check(odd_store, entity=f"times-{n}") for w in f.witnesses]
        assert len({w["event_id"] for w in witnesses}) == 2
        for w in witnesses:
            assert w["ts"] == shown[w["event_id"]]
