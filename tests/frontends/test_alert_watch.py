"""frontends.watch: spool files completed after the watcher started are ingested, alerted once."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from sentry_receiver import SentryReceiver

from collectors.store import open_store
from frontends.alert import event_id_for, run_alerts
from frontends.watch import Cycle, completed_files, watch


def lost_update_lines(entity: str = "block-A") -> list[str]:
    """A workflow write, then an instantiation write that never saw it (read version 1)."""
    base = {"event": "field.transition", "entity": entity, "entity_type": "block",
            "field": "content"}
    return [
        json.dumps({**base, "event_id": f"{entity}-w", "ts": "2024-05-01T10:00:00+00:00",
                    "old": "draft", "new": "done", "writer": "workflow", "base_version": 1,
                    "version": 2}),
        json.dumps({**base, "event_id": f"{entity}-i", "ts": "2024-05-01T10:00:01+00:00",
                    "old": "draft", "new": "template", "writer": "instantiation",
                    "base_version": 1, "version": 3,
                    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                    "span_id": "00f067aa0ba902b7"}),
    ]


def write_spool_file(spool: Path, name: str, lines: list[str]) -> Path:
    """As the spool does: write ``<name>.part``, rename to ``<name>`` when complete."""
    tmp = spool / f"{name}.part"
    tmp.write_text("\n".join(lines) + "\n")
    return tmp.rename(spool / name)


class Watcher:
    """Runs watch() in a thread; lets the test wait for cycles instead of sleeping."""

    def __init__(self, spool: Path, db: Path, dsn: str, **kwargs) -> None:
        self.stop = threading.Event()
        self.cycles: list[Cycle] = []
        self._cond = threading.Condition()
        self.returned: list[int] = []
        self.failure: BaseException | None = None

        def run() -> None:
            try:
                self.returned.append(watch(
                    spool, db=db, dsn=dsn, stop=self.stop, interval_s=0.02,
                    on_cycle=self._on_cycle, **kwargs,
                ))
            except BaseException as exc:  # surfaced by the waits below, not lost in a thread
                with self._cond:
                    self.failure = exc
                    self._cond.notify_all()

        self.thread = threading.Thread(target=run, daemon=True)

    def _on_cycle(self, cycle: Cycle) -> None:
        with self._cond:
            self.cycles.append(cycle)
            self._cond.notify_all()

    def wait_cycles(self, n: int, timeout: float = 20.0) -> None:
        self.wait_until(lambda cycles: len(cycles) >= n, timeout)

    def wait_until(self, predicate, timeout: float = 20.0) -> None:
        with self._cond:
            held = self._cond.wait_for(
                lambda: self.failure is not None or predicate(self.cycles), timeout
            )
        if self.failure is not None:
            raise self.failure
        assert held, self.cycles

    def __enter__(self) -> Watcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive()


@pytest.fixture
def rx():
    with SentryReceiver() as receiver:
        yield receiver


def expected_event_ids(db: Path) -> set[str]:
    from queries.runner import check

    con = open_store(db, read_only=True)
    try:
        return {event_id_for(f.fingerprint) for f in check(con)}
    finally:
        con.close()


def test_a_file_completed_after_start_is_alerted_once(tmp_path, rx):
    spool, db = tmp_path / "spool", tmp_path / "audit.duckdb"
    spool.mkdir()
    with Watcher(spool, db, rx.dsn) as w:
        w.wait_cycles(1)
        # Still being written (temporary name): not touched.
        partial = spool / "proc-1.jsonl.part"
        partial.write_text(lost_update_lines()[0] + "\n")
        start = len(w.cycles)
        w.wait_cycles(start + 2)
        assert not any(c.files for c in w.cycles) and rx.requests == 0
        partial.unlink()
        write_spool_file(spool, "proc-1.jsonl", lost_update_lines())
        w.wait_until(lambda cs: any(c.alert and c.alert.sent for c in cs))
        done = len(w.cycles)
        w.wait_cycles(done + 3)  # more cycles: nothing is sent twice
    assert w.returned == [len(w.cycles)]
    (ingest_cycle,) = [c for c in w.cycles if c.files]
    assert ingest_cycle.ingested == 2
    ids = [e["event_id"] for e in rx.events()]
    assert ids and len(ids) == len(set(ids))
    assert set(ids) == expected_event_ids(db)
    lost = next(e for e in rx.events() if e["tags"]["detector"] == "lost_update")
    assert lost["fingerprint"] == ["lost_update", "block-A", "content"]
    assert [w["event_id"] for w in lost["contexts"]["conflict"]["witnesses"]] == [
        "block-A-w", "block-A-i"
    ]
    # The overwriting write's OpenTelemetry ids link the alert to its trace.
    assert lost["contexts"]["trace"]["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_a_second_file_alerts_only_its_own_findings(tmp_path, rx):
    spool, db = tmp_path / "spool", tmp_path / "audit.duckdb"
    spool.mkdir()
    write_spool_file(spool, "proc-1.jsonl", lost_update_lines("block-A"))
    with Watcher(spool, db, rx.dsn) as w:
        w.wait_until(lambda cs: any(c.alert and c.alert.sent for c in cs))
        first = {e["event_id"] for e in rx.events()}
        write_spool_file(spool, "proc-2.jsonl", lost_update_lines("block-B"))
        w.wait_until(lambda cs: sum(bool(c.alert and c.alert.sent) for c in cs) >= 2)
    events = rx.events()
    assert len(events) == len({e["event_id"] for e in events})
    assert {e["tags"]["entity"] for e in events if e["event_id"] not in first} == {"block-B"}


def test_findings_sentry_refused_are_sent_on_a_later_cycle(tmp_path, rx):
    spool, db = tmp_path / "spool", tmp_path / "audit.duckdb"
    spool.mkdir()
    write_spool_file(spool, "proc-1.jsonl", lost_update_lines())
    rx.respond(500, times=100)  # every envelope of the first attempt
    with Watcher(spool, db, rx.dsn, retry_after_failure_s=0.0) as w:
        w.wait_until(lambda cs: any(c.alert and not c.alert.ok for c in cs))
        rx.clear_answers()
        w.wait_until(lambda cs: any(c.alert and c.alert.sent for c in cs))
    assert {e["event_id"] for e in rx.events()} == expected_event_ids(db)
    failed = next(c for c in w.cycles if c.alert and not c.alert.ok)
    assert "HTTP 500" in failed.alert.problem


def test_heartbeat_check_in_and_existing_backlog(tmp_path, rx):
    """The first cycle sends what was never sent before (e.g. after `audit ingest` by cron),
    and a monitor slug gives a Crons heartbeat."""
    spool, db = tmp_path / "spool", tmp_path / "audit.duckdb"
    spool.mkdir()
    from collectors.ingest import load_lines

    con = open_store(db)
    try:
        load_lines(con, lost_update_lines("block-Z"), "earlier")
    finally:
        con.close()
    with Watcher(spool, db, rx.dsn, monitor_slug="conflict-watch") as w:
        w.wait_until(lambda cs: any(c.alert and c.alert.sent for c in cs))
        assert rx.wait_for(lambda r: r.checkins())
    assert [(c["monitor_slug"], c["status"]) for c in rx.checkins()] == [
        ("conflict-watch", "ok")
    ]
    assert {e["tags"]["entity"] for e in rx.events()} == {"block-Z"}


def test_completed_files_ignores_temporary_and_hidden_names(tmp_path):
    (tmp_path / "a.jsonl").write_text("")
    (tmp_path / "b.jsonl.part").write_text("")
    (tmp_path / ".c.jsonl").write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.jsonl").write_text("")
    assert [p.name for p in completed_files(tmp_path)] == ["a.jsonl", "d.jsonl"]


def test_run_alerts_check_ins_around_a_run(tmp_path, rx):
    from collectors.ingest import load_lines

    con = open_store(tmp_path / "audit.duckdb")
    try:
        load_lines(con, lost_update_lines(), "test")
        result = run_alerts(con, dsn=rx.dsn, monitor_slug="conflict-audit")
        assert result.ok and result.sent
        n = len(result.sent)
        rx.respond(200)  # the in-progress check-in
        rx.respond(500, times=n)  # the events
        load_lines(con, lost_update_lines("block-B"), "test")
        failed = run_alerts(con, dsn=rx.dsn, monitor_slug="conflict-audit")
        assert not failed.ok
    finally:
        con.close()
    statuses = [c["status"] for c in rx.checkins()]
    assert statuses == ["in_progress", "ok", "in_progress", "error"]


def test_a_run_that_fails_checks_in_error_and_raises(tmp_path, rx):
    import duckdb

    con = open_store(tmp_path / "audit.duckdb")
    try:
        con.execute("DROP VIEW applied_events")  # the detectors cannot run
        with pytest.raises(duckdb.CatalogException):
            run_alerts(con, dsn=rx.dsn, monitor_slug="conflict-audit")
    finally:
        con.close()
    checkins = rx.checkins()
    assert [c["status"] for c in checkins] == ["in_progress", "error"]
    assert checkins[0]["check_in_id"] == checkins[1]["check_in_id"]
    assert rx.events() == []
