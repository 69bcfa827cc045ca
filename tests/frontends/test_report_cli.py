"""`audit report` as users run it: a real process, a real store made by `audit ingest`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.store import open_store
from queries.runner import check

EVENTS = [
    {"ts": "2025-03-04T10:00:00Z", "entity": "block-A", "field": "content", "writer": "user",
     "old": "", "new": "draft", "version": 1, "base_version": 0},
    {"ts": "2025-03-04T10:00:05Z", "entity": "block-A", "field": "content",
     "writer": "workflow", "old": "draft", "new": "from the workflow", "version": 2,
     "base_version": 1},
    {"ts": "2025-03-04T10:00:05.2Z", "entity": "block-A", "field": "content",
     "writer": "instantiation", "old": "draft", "new": "from the template", "version": 3,
     "base_version": 1},
]


def audit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    env.pop("AUDIT_DB", None)
    return subprocess.run(
        [sys.executable, "-c", "from frontends.cli import main; main()", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120, check=False,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report_cli")
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    done = audit("ingest", "events.jsonl", "--db", "audit.duckdb", cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder / "audit.duckdb"


def test_report_html_writes_one_page_with_every_finding(store):
    con = open_store(store, read_only=True)
    try:
        findings = check(con)
    finally:
        con.close()
    assert findings
    done = audit("report", "--db", str(store), "--html", "out.html", cwd=store.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("wrote out.html:")
    page = (store.parent / "out.html").read_text(encoding="utf-8")
    for f in findings:
        assert f'data-fingerprint="{f.fingerprint}"' in page


def test_report_in_the_terminal_fits_80_columns(store):
    done = audit("report", "--db", str(store), cwd=store.parent)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any("lost_update" in line for line in lines)
    assert any(line.lstrip().startswith("W2") for line in lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--db", "nowhere.duckdb"], "error: no store at nowhere.duckdb"),
        (["--top", "-1"], "error: "),
        (["--html", "missing-dir/out.html"], "error: cannot write missing-dir/out.html"),
        (["--detector", "no_such_detector"], "error: "),
    ],
)
def test_report_errors_are_one_line(store, args, message):
    if "--db" not in args:
        args = [*args, "--db", str(store)]
    done = audit("report", *args, cwd=store.parent)
    assert done.returncode == 2
    assert done.stderr.startswith(message) and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
