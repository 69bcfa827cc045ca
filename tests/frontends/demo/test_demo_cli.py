"""`audit demo` as a user runs it (in this process, see cli_support), at a tiny size: the
story, the JSON, the errors."""

from __future__ import annotations

import json

import pytest
from cli_support import run as run_cli

from frontends.cli import main

TINY = ["--duration", "0.4", "--blocks", "3", "--seed", "5"]


def run(*args, cwd):
    return run_cli(*args, cwd=cwd, columns=100, env={"AUDIT_DB": str(cwd / "mine.duckdb")})


def test_demo_tells_the_whole_story_in_one_run(tmp_path):
    done = run("demo", *TINY, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for heading in ("1. What the audit found (unsafe run)", "2. The findings",
                    "4. Who writes what", "5. The fix", "Explore"):
        assert heading in out
    assert "audit check --db demo.duckdb" in out
    assert "audit check --db demo-safe.duckdb" in out
    assert "false alarms 0, missed 0" in out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert (tmp_path / "demo.duckdb").exists() and (tmp_path / "demo-safe.duckdb").exists()
    assert (tmp_path / "demo.html").read_text().startswith("<!DOCTYPE html>")
    assert not (tmp_path / "mine.duckdb").exists()  # $AUDIT_DB is the user's, not the demo's

    again = run("demo", *TINY, "--unsafe-only", "--json", "--no-html", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    (unsafe,) = summary["runs"]
    assert unsafe["mode"] == "unsafe" and unsafe["exact"] and unsafe["html"] is None
    assert set(unsafe["detectors"]) == {
        "lost_update", "version_conflict", "stale_overwrite", "priority_inversion",
        "oscillation", "chain_break",
    }
    for counts in unsafe["detectors"].values():
        assert counts["found"] == counts["truth"] == counts["correct"]


def test_demo_safe_alone_uses_the_given_store(tmp_path):
    done = run("demo", *TINY, "--safe", "--json", "--db", tmp_path / "fix.duckdb", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (safe,) = json.loads(done.stdout)["runs"]
    assert safe["mode"] == "safe" and safe["db"].endswith("fix.duckdb")
    for name in ("lost_update", "version_conflict", "stale_overwrite"):
        assert safe["detectors"][name]["found"] == 0


def test_demo_errors_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "other.duckdb"
    other.write_text("not a database")
    for args, message in (
        (["--db", other], "cannot replace"),
        (["--safe", "--unsafe-only"], "exclude each other"),
        (["--duration", "0"], "--duration"),
        (["--db", tmp_path / "nowhere" / "x.duckdb"], "does not exist"),
    ):
        with pytest.raises(SystemExit) as exited:
            main(["demo", *map(str, args)])
        out, err = capsys.readouterr()
        assert exited.value.code == 2, (args, out, err)
        assert err.startswith("error: ") and message in err
        assert len(err.strip().splitlines()) == 1
        assert out == ""
