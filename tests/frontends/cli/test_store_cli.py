"""`audit ingest / stats / schema` as a user runs them (in this process, see cli_support):
counts, exit codes, one-line errors."""

from __future__ import annotations

import json

import jsonschema
import pytest
from cli_support import run
from sample_event import event

EVENT = event(event=...)  # the minimal event, without the optional "event" key


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "app.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps(EVENT),
                json.dumps({**EVENT, "new": "c", "old": "b"}),
                json.dumps({"event": "http.request", "status": 200}),
                "garbage",
            ]
        )
        + "\n"
    )
    return path


def test_ingest_prints_the_four_counts_and_defaults_to_audit_duckdb_in_cwd(tmp_path, log):
    result = run("ingest", log, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (
        "2 ingested, 0 duplicates skipped, 1 other log lines skipped, 1 rejected" in result.stdout
    )
    assert json.loads(run("stats", "--json", cwd=tmp_path).stdout)["events"] == 2
    again = run("ingest", log, cwd=tmp_path)
    assert "0 ingested" in again.stdout and "1 unchanged" in again.stdout


def test_ingest_reads_stdin_and_honours_audit_db(tmp_path, log):
    env = {"AUDIT_DB": str(tmp_path / "env.duckdb")}
    result = run("ingest", "-", stdin=log.read_text(), env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 ingested" in result.stdout
    stats = run("stats", "--json", "--db", tmp_path / "env.duckdb")
    assert json.loads(stats.stdout)["events"] == 2


def test_stats_shows_writers_and_rejects_as_json(tmp_path, log):
    db = tmp_path / "s.duckdb"
    run("ingest", log, "--db", db)
    result = run("stats", "--db", db, "--json")
    stats = json.loads(result.stdout)
    assert stats["events"] == 2 and stats["rejected"] == 1
    assert stats["by_writer"] == [["user", 2]]
    assert stats["rejects_by_reason"] == [["invalid JSON", 1]]



def test_stats_of_a_store_with_only_rejects_gives_no_time_range(tmp_path):
    db = tmp_path / "r.duckdb"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"bad": \n')
    run("ingest", bad, "--db", db)
    result = run("stats", "--db", db)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "0 events on 0 entities; 1 file(s) ingested; 1 rejected lines"
    )

@pytest.mark.parametrize(
    "args, message",
    [
        (["ingest", "/no/such/file.jsonl"], "error: no such file or folder: /no/such/file.jsonl"),
        (["stats", "--db", "/no/such/store.duckdb"], "error: no store at /no/such/store.duckdb"),
        (["ingest", "--frobnicate", "x"], "error: No such option: --frobnicate"),
        (
            ["ingest", "x.jsonl", "--db", "/no/such/dir/a.duckdb"],
            "error: directory /no/such/dir does not exist",
        ),
    ],
)
def test_errors_are_one_line_on_stderr_with_status_2(tmp_path, args, message):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(message)
    assert "Traceback" not in result.stderr


def test_an_unreadable_store_is_a_one_line_error(tmp_path):
    bogus = tmp_path / "bogus.duckdb"
    bogus.write_text("this is not a database")
    result = run("stats", "--db", bogus)
    assert result.returncode == 2 and result.stderr.startswith("error: cannot open")
    assert len(result.stderr.strip().splitlines()) == 1


def test_schema_is_valid_json_schema_that_accepts_events_and_rejects_bad_ones():
    schema = json.loads(run("schema").stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    assert validator.is_valid({**EVENT, "version": 3, "event": "field.transition"})
    added = {k: v for k, v in EVENT.items() if k != "old"} | {"change": "added"}
    assert validator.is_valid(added)
    assert not validator.is_valid({**EVENT, "ts": "2026-01-01 10:00:00"})
    assert not validator.is_valid({k: v for k, v in EVENT.items() if k != "writer"})
    assert not validator.is_valid({**EVENT, "version": "3"})
    assert not validator.is_valid({k: v for k, v in EVENT.items() if k != "new"})


def test_no_arguments_prints_help():
    result = run()
    assert result.returncode == 0
    assert "ingest" in result.stdout and "Usage" in result.stdout
