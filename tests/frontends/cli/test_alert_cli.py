"""`audit alert` end to end: events through the ingest, the real sentry-sdk, a local receiver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sentry_receiver import SentryReceiver, refusing_dsn

from collectors.ingest import ingest
from collectors.store import open_store
from frontends.cli import main

ROOT = Path(__file__).resolve().parents[3]


def events_file(path: Path, entity: str = "block-A", converge: bool = False) -> Path:
    """A workflow write and an instantiation write that never saw it (both read version 1);
    with ``converge``, both write the same value (the lost update is then a warning)."""
    base = {"event": "field.transition", "entity": entity, "entity_type": "block",
            "field": "content"}
    lines = [
        {**base, "event_id": f"{entity}-w", "ts": "2024-05-01T10:00:00+00:00", "old": "draft",
         "new": "done", "writer": "workflow", "base_version": 1, "version": 2},
        {**base, "event_id": f"{entity}-i", "ts": "2024-05-01T10:00:01+00:00", "old": "draft",
         "new": "done" if converge else "template", "writer": "instantiation",
         "base_version": 1, "version": 3},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture
def rx():
    with SentryReceiver() as receiver:
        yield receiver


@pytest.fixture
def db(tmp_path, monkeypatch):
    for name in ("SENTRY_DSN", "SENTRY_ENVIRONMENT", "SENTRY_RELEASE", "AUDIT_DB"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "audit.duckdb"
    con = open_store(path)
    try:
        ingest(con, [str(events_file(tmp_path / "events.jsonl"))])
    finally:
        con.close()
    return path


def run(*argv: str) -> int:
    try:
        main(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def findings_in(db: Path) -> list:
    from queries.runner import check

    con = open_store(db, read_only=True)
    try:
        return check(con)
    finally:
        con.close()


def sent_count(db: Path) -> int:
    con = open_store(db, read_only=True)
    try:
        return con.execute("SELECT count(*) FROM sent_alerts").fetchall()[0][0]
    finally:
        con.close()


def test_sends_each_finding_once(db, rx, capsys):
    n = len(findings_in(db))
    assert n >= 1
    assert run("alert", "--db", str(db), "--dsn", rx.dsn) == 0
    assert f"sent {n} finding" in capsys.readouterr().out
    assert len(rx.events()) == n == sent_count(db)
    assert "lost_update" in {e["tags"]["detector"] for e in rx.events()}
    assert run("alert", "--db", str(db), "--dsn", rx.dsn) == 0
    assert "sent 0 findings" in capsys.readouterr().out
    assert len(rx.events()) == n


def test_dsn_environment_and_release_from_the_environment(db, rx, monkeypatch):
    monkeypatch.setenv("SENTRY_DSN", rx.dsn)
    monkeypatch.setenv("SENTRY_ENVIRONMENT", "staging")
    monkeypatch.setenv("SENTRY_RELEASE", "app@2.0")
    assert run("alert", "--db", str(db), "--detector", "lost_update") == 0
    (event,) = rx.events()
    assert (event["environment"], event["release"]) == ("staging", "app@2.0")


def test_missing_dsn_is_one_line_and_exit_2(db, capsys):
    assert run("alert", "--db", str(db)) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: no Sentry DSN: pass --dsn or set SENTRY_DSN"


def test_missing_store_is_an_error_not_an_empty_run(tmp_path, rx, capsys):
    assert run("alert", "--db", str(tmp_path / "nope.duckdb"), "--dsn", rx.dsn) == 2
    assert capsys.readouterr().err.startswith("error: no store at")
    assert not (tmp_path / "nope.duckdb").exists() and rx.requests == 0


def test_server_error_exits_2_and_the_next_run_sends(db, rx, capsys):
    n = len(findings_in(db))
    rx.respond(500, times=n)
    assert run("alert", "--db", str(db), "--dsn", rx.dsn) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "HTTP 500" in err[0] and "next run" in err[0]
    assert sent_count(db) == 0
    assert run("alert", "--db", str(db), "--dsn", rx.dsn) == 0
    assert len(rx.events()) == n == sent_count(db)


def test_unreachable_sentry_exits_2(db, capsys):
    dsn, sock = refusing_dsn()
    try:
        assert run("alert", "--db", str(db), "--dsn", dsn) == 2
    finally:
        sock.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: Sentry is unreachable")
    assert sent_count(db) == 0


def test_rate_limited_exits_2_and_the_findings_wait(db, rx, capsys):
    rx.respond(429, {"Retry-After": "60"})
    assert run("alert", "--db", str(db), "--dsn", rx.dsn) == 2
    assert "rate-limiting" in capsys.readouterr().err
    assert rx.requests == 1 and sent_count(db) == 0
    assert run("alert", "--db", str(db), "--dsn", rx.dsn) == 0
    assert sent_count(db) == len(findings_in(db))


def test_dry_run_prints_and_records_nothing(db, rx, capsys):
    assert run("alert", "--db", str(db), "--dry-run") == 0  # no DSN needed
    out = capsys.readouterr().out
    assert "lost_update" in out and "dry run: would send" in out
    assert rx.requests == 0 and sent_count(db) == 0


def test_max_min_severity_and_detector(db, rx, capsys):
    assert run("alert", "--db", str(db), "--dsn", rx.dsn, "--max", "1") == 0
    events = rx.events()
    n = len(findings_in(db))
    assert n == 3 and len(events) == 2  # one finding on its own, the other two summarised
    assert sent_count(db) == n
    assert run("alert", "--db", str(db), "--dsn", rx.dsn, "--min-severity", "fatal") == 2
    assert "unknown severity" in capsys.readouterr().err


def test_min_severity_selects_by_each_findings_own_severity(tmp_path, capsys):
    """A lost update whose writes converge is a warning: --min-severity error leaves it out,
    --min-severity warning sends it, whatever other lost updates are."""
    db = tmp_path / "converging.duckdb"
    con = open_store(db)
    try:
        ingest(con, [str(events_file(tmp_path / "events.jsonl", converge=True))])
    finally:
        con.close()
    assert {(f.detector, f.severity) for f in findings_in(db)} == {
        ("lost_update", "warning"), ("chain_break", "warning")}
    assert run("alert", "--db", str(db), "--dry-run", "--min-severity", "error") == 0
    assert "would send 0 findings" in capsys.readouterr().out
    assert run("alert", "--db", str(db), "--dry-run", "--min-severity", "warning") == 0
    out = capsys.readouterr().out
    assert "would send 2 findings" in out
    assert any(line.startswith("warning  lost_update") for line in out.splitlines())


def test_monitor_slug_checks_in(db, rx):
    assert run("alert", "--db", str(db), "--dsn", rx.dsn, "--monitor-slug", "audit-job") == 0
    checkins = rx.checkins()
    assert [(c["monitor_slug"], c["status"]) for c in checkins] == [
        ("audit-job", "in_progress"), ("audit-job", "ok")
    ]
    assert "duration" not in checkins[0] and 0 <= checkins[1]["duration"] < 60


def test_monitor_reports_error_when_delivery_failed(db, rx):
    n = len(findings_in(db))
    rx.respond(200)  # in-progress check-in
    rx.respond(500, times=n)
    assert run("alert", "--db", str(db), "--dsn", rx.dsn, "--monitor-slug", "audit-job") == 2
    assert [c["status"] for c in rx.checkins()] == ["in_progress", "error"]


def test_watch_until_sigterm(tmp_path, rx):
    """The watcher picks up a spool file completed after it started, alerts once, and ends
    cleanly on SIGTERM."""
    spool, db = tmp_path / "spool", tmp_path / "audit.duckdb"
    spool.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "AUDIT_"))}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from frontends.cli import main; main()", "alert", "--watch",
         str(spool), "--db", str(db), "--dsn", rx.dsn, "--interval", "0.05"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        started = threading.Event()
        err_lines: list[str] = []

        def read_stderr() -> None:
            for line in proc.stderr:
                err_lines.append(line)
                if line.startswith("watching"):
                    started.set()

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        assert started.wait(30), err_lines
        tmp = events_file(spool / "proc-7.jsonl.part")
        tmp.rename(spool / "proc-7.jsonl")
        assert rx.wait_for(lambda r: r.events(), timeout=30)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=10)  # the reader alone drains stderr, to its end
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err_lines
    assert "ingested 2 events from 1 file" in out
    assert any(line.startswith("stopped after") for line in err_lines)
    ids = [e["event_id"] for e in rx.events()]
    assert len(ids) == len(set(ids)) == len(findings_in(db))
