"""`audit report` as users run it (in this process, see cli_support): a real store made by
`audit ingest`."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

import pytest
from cli_support import run

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


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report_cli")
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    done = run("ingest", "events.jsonl", "--db", "audit.duckdb", cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder / "audit.duckdb"


def test_report_html_writes_one_page_with_every_finding(store):
    con = open_store(store, read_only=True)
    try:
        findings = check(con)
    finally:
        con.close()
    assert findings
    done = run("report", "--db", str(store), "--html", "out.html", cwd=store.parent)
    assert done.returncode == 0, done.stderr
    stories = {(f.entity, f.field, tuple(f.event_ids)) for f in findings}  # one picture each
    assert done.stdout == f"wrote out.html: {len(findings)} findings, {len(stories)} timelines\n"
    page = (store.parent / "out.html").read_text(encoding="utf-8")
    for f in findings:
        assert f'data-fingerprint="{f.fingerprint}"' in page
        assert escape(f.message) in page


def test_report_in_the_terminal_fits_80_columns(store):
    done = run("report", "--db", str(store), cwd=store.parent)
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
    done = run("report", *args, cwd=store.parent)
    assert done.returncode == 2
    assert done.stderr.startswith(message) and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
