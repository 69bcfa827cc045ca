"""`audit check / timeline / replay / owners` as a user runs them: output, exit codes, errors.

In this process (cli_support.run); one test spawns a real process for check's exit status."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from cli_support import run

AUDIT = [sys.executable, "-m", "frontends.cli"]


def spawn(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    env.pop("AUDIT_DB", None)
    return subprocess.run([*AUDIT, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=120)


def event(event_id, ts, field, writer, old=None, new=None, **extra):
    e = {"event_id": event_id, "ts": f"2026-03-01T12:{ts // 60:02d}:{ts % 60:02d}Z",
         "entity": "block-A",
         "field": field, "writer": writer, **extra}
    if old is not None:
        e["old"] = old
    if new is not None:
        e["new"] = new
    if old is None:
        e["change"] = "added"
    return e


RACE = [
    event("e1", 0, "content", "instantiation", new="hello", base_version=0, version=1),
    event("e2", 50, "content", "workflow", old="hello", new="new content", base_version=1,
          version=2, actor="run-7"),
    event("e3", 65, "content", "instantiation", old="hello", new="hello again",
          base_version=1, version=3),
    event("e4", 80, "indexingList.0.status", "instantiation", new="done"),
]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """A store holding a lost update (ingested once for the whole module)."""
    folder = tmp_path_factory.mktemp("detect_cli")
    log = folder / "race.jsonl"
    log.write_text("\n".join(json.dumps(e) for e in RACE) + "\n")
    result = run("ingest", log, "--db", folder / "race.duckdb")
    assert result.returncode == 0, result.stderr
    return folder / "race.duckdb"


@pytest.fixture(scope="module")
def clean_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("detect_cli_clean")
    log = folder / "clean.jsonl"
    log.write_text(json.dumps(RACE[0]) + "\nnot json\n")
    assert run("ingest", log, "--db", folder / "clean.duckdb").returncode == 0
    return folder / "clean.duckdb"


def test_check_exits_1_with_findings_and_prints_a_table_that_fits_80_columns(db):
    result = spawn("check", "--db", db)  # a real process, a real exit status
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    words = result.stdout.replace("│", " ").split()
    assert "lost_update" in words and "ERROR" in words and "instantiation," in words
    assert lines[-1] == "3 findings: 1 error, 2 warnings"


def test_check_exits_0_on_a_clean_store(clean_db):
    result = run("check", "--db", clean_db)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no findings"
    as_json = run("check", "--db", clean_db, "--format", "json")
    assert as_json.returncode == 0 and json.loads(as_json.stdout) == []


def test_check_json_is_one_array_of_findings(db):
    result = run("check", "--db", db, "--format", "json")
    assert result.returncode == 1
    findings = json.loads(result.stdout)  # the whole output is one JSON document
    assert {f["detector"] for f in findings} == {
        "lost_update", "chain_break", "priority_inversion"}
    lost = next(f for f in findings if f["detector"] == "lost_update")
    assert lost["event_ids"] == ["e2", "e3"]
    assert lost["writers"] == ["workflow", "instantiation"]
    assert lost["message"].startswith(
        "workflow (run-7) set content of block-A to 'new content' at version 2; instantiation, "
        "which had read version 1, overwrote it")
    assert lost["witnesses"][0]["actor"] == "run-7"


def test_check_csv_has_a_header_and_one_row_per_finding(db):
    result = run("check", "--db", db, "--format", "csv", "--detector", "lost_update")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["detector"] for r in rows] == ["lost_update"]
    assert rows[0]["event_ids"] == "e2;e3" and rows[0]["severity"] == "error"
    # what the detector measured, as JSON text, in the detector's own order
    assert rows[0]["facts"] == ('{"rule": "version", "read_version": 1, '
                                '"overwritten_version": 2, "convergent": false}')
    assert result.stdout.splitlines()[0].endswith(",message,facts")


# Two writers that read version 1 both mark block-C done (their writes converge: a lost
# update of severity warning), then a user writes a note without reading it (a blind write).
CONVERGING = [
    {"event_id": "c1", "ts": "2026-03-01T13:00:00Z", "entity": "block-C", "field": "status",
     "old": "pending", "new": "done", "writer": "workflow", "base_version": 1, "version": 2},
    {"event_id": "c2", "ts": "2026-03-01T13:00:01Z", "entity": "block-C", "field": "status",
     "old": "pending", "new": "done", "writer": "polling_sync", "base_version": 1,
     "version": 3},
    {"event_id": "c3", "ts": "2026-03-01T13:00:02Z", "entity": "block-C", "field": "note",
     "change": "changed", "new": "checked", "writer": "user", "base_version": 3, "version": 4},
]


@pytest.fixture(scope="module")
def converging_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("detect_cli_converging")
    log = folder / "converging.jsonl"
    log.write_text("\n".join(json.dumps(e) for e in CONVERGING) + "\n")
    assert run("ingest", log, "--db", folder / "converging.duckdb").returncode == 0
    return folder / "converging.duckdb"


def test_severity_is_each_findings_own_in_every_format(converging_db):
    """A lost update whose writes converge is a warning: the table, its count, the CSV and
    the JSON say so, and each shows what the detector measured."""
    as_json = json.loads(run("check", "--db", converging_db, "-f", "json").stdout)
    assert [(f["detector"], f["severity"]) for f in as_json] == [
        ("lost_update", "warning"), ("chain_break", "warning")]
    assert as_json[0]["facts"] == {"rule": "version", "read_version": 1,
                                   "overwritten_version": 2, "convergent": True}
    rows = list(csv.DictReader(io.StringIO(
        run("check", "--db", converging_db, "-f", "csv").stdout)))
    assert [(r["detector"], r["severity"]) for r in rows] == [
        ("lost_update", "warning"), ("chain_break", "warning")]
    assert [json.loads(r["facts"]) for r in rows] == [f["facts"] for f in as_json]
    table = run("check", "--db", converging_db, columns=100)
    assert table.returncode == 1
    lines = table.stdout.splitlines()
    assert lines[-1] == "2 findings: 2 warnings"
    assert "ERROR" not in table.stdout and table.stdout.count("WARNING") == 2
    assert "rule version · versions read v1 → overwritten v2 · same value" in table.stdout


def test_timeline_shows_a_blind_writes_old_value_as_not_read(converging_db):
    table = run("timeline", "block-C", "--db", converging_db, columns=120)
    assert table.returncode == 0, table.stderr
    assert "(not read) → 'checked'" in table.stdout and "(absent)" not in table.stdout
    assert "'pending' → 'done'" in table.stdout
    rows = json.loads(run("timeline", "block-C", "--db", converging_db, "-f", "json").stdout)
    assert [(r["event_id"], r["blind"], r["attrs"]) for r in rows] == [
        ("c1", False, None), ("c2", False, None), ("c3", True, None)]


def test_check_selects_by_detector_entity_and_time(db):
    result = run("check", "--db", db, "-f", "json", "--detector", "chain_break",
                 "--detector", "priority_inversion")
    assert {f["detector"] for f in json.loads(result.stdout)} == {
        "chain_break", "priority_inversion"}
    other = run("check", "--db", db, "-f", "json", "--entity", "block-Z")
    assert other.returncode == 0 and json.loads(other.stdout) == []
    # nothing checked is said, so that a mistyped id does not pass for a clean one
    assert other.stderr == "note: no events of entity 'block-Z' in the store\n"
    clean = run("check", "--db", db, "--entity", "block-A", "-d", "oscillation")
    assert clean.returncode == 0 and clean.stderr == ""
    # a finding is kept when its witnesses (e2 at 12:00:50, e3 at 12:01:05) overlap the range
    late = run("check", "--db", db, "-f", "json", "--since", "2026-03-01T12:01:10Z")
    assert late.returncode == 0 and json.loads(late.stdout) == []
    assert len(json.loads(run("check", "--db", db, "-f", "json",
                              "--since", "2026-03-01T12:01:00Z").stdout)) == 3
    early = run("check", "--db", db, "-f", "json", "--until", "2026-03-01T12:00:45+00:00")
    assert early.returncode == 0 and json.loads(early.stdout) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--detector", "nope"], "unknown detector 'nope'"),
        (["--since", "yesterday"], "--since: 'yesterday' is not an RFC 3339 timestamp"),
        (["--until", "2026-13-01T00:00:00Z"], "--until"),
        (["--format", "xml"], "xml"),
        (["--config", "missing.toml"], "config file not found"),
    ],
)
def test_check_bad_options_are_one_line_and_exit_2(db, args, message):
    result = run("check", "--db", db, *args)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


def test_a_missing_store_is_exit_2(tmp_path):
    for args in (["check"], ["timeline", "block-A"], ["owners"],
                 ["replay", "block-A", "--at", "2026-03-01T12:00:00Z"]):
        result = run(*args, "--db", tmp_path / "none.duckdb")
        assert result.returncode == 2
        assert result.stderr == f"error: no store at {tmp_path / 'none.duckdb'}; run " \
            "`audit ingest` first (or pass --db)\n"
    assert not (tmp_path / "none.duckdb").exists()


def test_check_reads_thresholds_from_audit_toml_in_the_working_directory(db, tmp_path):
    (tmp_path / "audit.toml").write_text("[priority]\nwindow = 5\n")
    result = run("check", "--db", db, "-f", "json", cwd=tmp_path)
    assert "priority_inversion" not in {f["detector"] for f in json.loads(result.stdout)}


def test_timeline_marks_the_findings_of_each_transition(db):
    result = run("timeline", "block-A", "--db", db, columns=100)
    assert result.returncode == 0, result.stderr
    assert "lost_update" in result.stdout and "workflow (run-7)" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 100
    rows = json.loads(run("timeline", "block-A", "--db", db, "-f", "json").stdout)
    assert [r["event_id"] for r in rows] == ["e1", "e2", "e3", "e4"]
    assert rows[2]["findings"] == ["lost_update", "priority_inversion", "chain_break"]
    only = json.loads(run("timeline", "block-A", "--field", "indexingList.0.status",
                          "--db", db, "-f", "json").stdout)
    assert [r["event_id"] for r in only] == ["e4"]
    missing = run("timeline", "block-Z", "--db", db)
    assert missing.returncode == 2 and "no events of entity 'block-Z'" in missing.stderr


def test_replay_prints_the_values_as_of_a_time(db):
    result = run("replay", "block-A", "--at", "2026-03-01T12:00:55Z", "--db", db, "-f", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"content": "new content"}
    table = run("replay", "block-A", "--at", "2026-03-01T12:02:00Z", "--db", db)
    assert "'hello again'" in table.stdout and "indexingList.0.status" in table.stdout
    bad = run("replay", "block-A", "--at", "noon", "--db", db)
    assert bad.returncode == 2 and "--at" in bad.stderr


def test_owners_lists_contested_fields_first(db):
    result = run("owners", "--db", db, "-f", "json")
    rows = json.loads(result.stdout)
    assert [r["field"] for r in rows] == ["content", "indexingList.*.status"]
    assert rows[0]["contested"] is True
    table = run("owners", "--db", db)
    assert table.returncode == 0 and "indexingList.*.status" in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80


def test_names_that_look_like_markup_are_printed_as_they_are(tmp_path):
    log = tmp_path / "odd.jsonl"
    odd = [{**e, "entity": "[/bold]x[red]", "field": "a[/]b"} for e in RACE[:3]]
    log.write_text("\n".join(json.dumps(e) for e in odd) + "\n")
    assert run("ingest", log, "--db", tmp_path / "odd.duckdb").returncode == 0
    result = run("timeline", "[/bold]x[red]", "--db", tmp_path / "odd.duckdb", columns=120)
    assert result.returncode == 0, result.stderr
    assert "[/bold]x[red]" in result.stdout and "a[/]b" in result.stdout
    checked = run("check", "--db", tmp_path / "odd.duckdb", columns=120)
    assert checked.returncode == 1 and "[/bold]x[red]" in checked.stdout
