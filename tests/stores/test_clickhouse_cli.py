"""The command line on chdb stores: what `audit` prints and does with --db chdb:DIR, the same
as with a DuckDB file; and the one-line errors of store URLs (docs/contract.md §4, §8)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import run
from sentry_receiver import SentryReceiver

ROOT = Path(__file__).resolve().parents[2]


def line(eid, ts, writer, old, new, **rest):
    return json.dumps({"event": "field.transition", "event_id": eid, "ts": ts,
                       "entity": "block-A", "field": "content", "writer": writer,
                       "old": old, "new": new, **rest}) + "\n"


EVENTS = [
    line("e1", "2024-05-01T10:00:00Z", "workflow", "draft", "done", base_version=1, version=2),
    line("e2", "2024-05-01T10:00:01Z", "instantiation", "draft", "tpl", base_version=1,
         version=3),
    "not json\n",
]


def ingested(folder: Path) -> tuple[Path, Path, str]:
    """The same events file ingested into a DuckDB store and a chdb store."""
    folder.mkdir(exist_ok=True)
    events = folder / "events.jsonl"
    events.write_text("".join(EVENTS))
    duck, ch = folder / "a.duckdb", f"chdb:{folder / 'a.chdb'}"
    for db in (duck, ch):
        assert run("ingest", events, "--db", db).returncode == 0
    return events, duck, ch


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """For the tests that only read."""
    return ingested(tmp_path_factory.mktemp("cli"))


def test_ingest_prints_the_same_counts_and_is_idempotent(tmp_path):
    events, duck, ch = ingested(tmp_path)
    again = [run("ingest", events, "--db", db, "--json") for db in (duck, ch)]
    counts = [json.loads(r.stdout) for r in again]
    for c in counts:
        c.pop("seconds")
    assert counts[0] == counts[1]
    assert counts[1]["ingested"] == 0 and counts[1]["unchanged_files"] == 1
    with events.open("a") as f:  # the file grows: only the new line is read
        f.write(line("e3", "2024-05-01T10:00:02Z", "user", "tpl", "mine"))
    grown = [json.loads(run("ingest", events, "--db", db, "--json").stdout)
             for db in (duck, ch)]
    assert [g["ingested"] for g in grown] == [1, 1]
    assert [g["lines"] for g in grown] == [1, 1]


def test_a_rewritten_file_is_read_again_and_its_rejects_replaced(tmp_path):
    events, duck, ch = ingested(tmp_path)
    events.write_text("".join(EVENTS[:2]) + "still not json\n" + EVENTS[2])
    for db in (duck, ch):
        result = run("ingest", events, "--db", db, "--json")
        assert json.loads(result.stdout)["ingested"] == 0
        assert json.loads(result.stdout)["rejected"] == 2
    stats = [json.loads(run("stats", "--db", db, "--json").stdout) for db in (duck, ch)]
    assert stats[0] == stats[1]
    assert stats[1]["rejected"] == 2 and stats[1]["events"] == 2


READERS = [
    ["check", "-f", "json"], ["check", "-f", "csv"], ["check"],
    ["check", "--until", "2024-05-01T10:00:00Z", "-f", "json"],
    ["check", "--entity", "block-Z", "-f", "json"],  # none: a note on stderr
    ["timeline", "block-A", "-f", "json"], ["timeline", "block-A"],
    ["replay", "block-A", "--at", "2024-06-01T00:00:00Z", "-f", "json"],
    ["owners", "-f", "json"], ["stats", "--json"],
]


def test_every_reader_prints_the_same(stores):
    _, duck, ch = stores
    for argv in READERS:
        a, b = run(*argv, "--db", duck), run(*argv, "--db", ch)
        assert (b.returncode, b.stdout, b.stderr) == (a.returncode, a.stdout, a.stderr), argv
        assert a.stdout.strip()


def test_report_and_alert_work_on_chdb(stores, tmp_path, monkeypatch):
    _, _, ch = stores
    html = tmp_path / "report.html"
    assert run("report", "--db", ch, "--html", html).returncode == 0
    assert "block-A" in html.read_text()
    for name in ("SENTRY_DSN", "SENTRY_ENVIRONMENT", "SENTRY_RELEASE"):
        monkeypatch.delenv(name, raising=False)
    found = len(json.loads(run("check", "--db", ch, "-f", "json").stdout))
    with SentryReceiver() as rx:
        first = run("alert", "--db", ch, "--dsn", rx.dsn)
        assert first.returncode == 0 and f"sent {found} findings" in first.stdout
        second = run("alert", "--db", ch, "--dsn", rx.dsn)  # sent_alerts kept in ClickHouse
        assert second.returncode == 0 and "sent 0 findings" in second.stdout
        assert len(rx.events()) == found


@pytest.mark.parametrize(("db", "says"), [
    ("ftp://x/y", "unknown store URL scheme 'ftp'"),
    ("chdb:", "chdb: needs a directory"),
    ("clickhouse://user:secret@host/db", "needs a host, a port and a database"),
    ("clickhouse://user:secret@host:8123/db?color=red", "unknown option 'color'"),
    ("clickhouse://user:secret@127.0.0.1:1/db", "cannot reach ClickHouse at "
                                                "clickhouse://user:***@127.0.0.1:1/db"),
])
def test_bad_store_urls_are_one_line_and_exit_2(db, says):
    result = run("check", "--db", db)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and says in result.stderr
    assert result.stderr.count("\n") == 1 and "secret" not in result.stderr


def test_a_chdb_store_that_does_not_exist_is_not_created_by_a_reader(tmp_path):
    result = run("check", "--db", f"chdb:{tmp_path / 'none'}")
    assert result.returncode == 2 and "no store at chdb:" in result.stderr
    assert not (tmp_path / "none").exists()


def test_without_the_extra_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "chdb", None)  # as if chdb were not installed
    (tmp_path / "e.jsonl").write_text(EVENTS[0])
    result = run("ingest", tmp_path / "e.jsonl", "--db", f"chdb:{tmp_path / 's'}")
    assert result.returncode == 2
    assert "install the clickhouse extra" in result.stderr


def test_commands_that_need_duckdb_say_so(stores, tmp_path):
    _, _, ch = stores
    (tmp_path / "doc.json").write_text('{"id": "doc-1", "title": "a"}')
    result = run("import", "snapshots", tmp_path / "doc.json", "--db", ch)
    assert result.returncode == 2 and "DuckDB stores only" in result.stderr


def test_a_store_another_process_holds_is_waited_for_then_named(stores):
    _, _, ch = stores
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from collectors.store import open_store; "
         f"s = open_store({ch!r}); print('open', flush=True); sys.stdin.read(); s.close()"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        result = run("check", "--db", ch, "--wait", "0.2")
        assert result.returncode == 2
        assert f"in use by another process (PID {holder.pid})" in result.stderr
    finally:
        holder.communicate("")
    assert run("check", "--db", ch).returncode == 1  # free again: findings
