"""Continuous alerting: ingest spool files as they are completed, alert on what is new.

The spool writes one JSON Lines file per process as ``….jsonl.part`` and renames it to
``….jsonl`` once complete, so only ``*.jsonl`` files are picked up (never a file being
written). Each cycle hands the files that are new or changed since the last cycle to the
ingest (which loads only lines it has not loaded before), then runs the detectors and sends
what was not sent yet.

The store is opened for a cycle and closed after it: DuckDB lets one process hold a database
file, and a watcher that kept it open would lock out every ``audit check`` meanwhile.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from audit.config import Config
from audit.errors import AuditError, first_line
from collectors.ingest import ingest
from collectors.spool import seal_abandoned
from collectors.store import LOCK_WAIT_S, open_store
from frontends.alert import (
    DEFAULT_MAX,
    DEFAULT_TIMEOUT_S,
    AlertResult,
    SentryChannel,
    channel_for,
    check_in,
    run_alerts,
)

DEFAULT_INTERVAL_S = 2.0
RETRY_AFTER_FAILURE_S = 30.0  # after Sentry failed us, resend no more often than this
HEARTBEAT_S = 60.0  # at most one Crons check-in a minute in watch mode


@dataclass
class Cycle:
    """What one pass of the watcher did."""

    number: int
    files: int = 0  # new or grown spool files handed to the ingest
    ingested: int = 0  # events stored
    rejected: int = 0
    alert: AlertResult | None = None  # None when there was nothing new to check
    error: str | None = None  # a cycle that failed (locked store, unreadable file); retried


def completed_files(spool_dir: Path) -> list[Path]:
    """The spool's completed files: ``*.jsonl``, not hidden, oldest name first."""
    return sorted(
        p for p in spool_dir.rglob("*.jsonl") if p.is_file() and not p.name.startswith(".")
    )


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:  # rotated away between listing and looking
        return None
    return st.st_size, st.st_mtime_ns


def watch(
    spool_dir: str | os.PathLike,
    *,
    db: str | os.PathLike | None = None,
    wait_s: float = LOCK_WAIT_S,
    dsn: str | None = None,
    channel: SentryChannel | None = None,
    stop: threading.Event | None = None,
    interval_s: float = DEFAULT_INTERVAL_S,
    max_cycles: int | None = None,
    on_cycle: Callable[[Cycle], None] | None = None,
    notify: Callable[[str], None] | None = None,
    environment: str | None = None,
    release: str | None = None,
    detectors: Sequence[str] | None = None,
    config: Config | None = None,
    min_severity: str = "info",
    max_events: int = DEFAULT_MAX,
    monitor_slug: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retry_after_failure_s: float = RETRY_AFTER_FAILURE_S,
) -> int:
    """Watch ``spool_dir`` until ``stop`` is set (or ``max_cycles`` ran); returns the cycles run.

    A stop request ends the loop after the cycle in hand, never in the middle of one. With
    ``monitor_slug`` a Crons heartbeat (ok, or error after a failed cycle) goes out at most
    once a minute, so a watcher that died is itself noticed.
    """
    spool = Path(spool_dir)
    if not spool.is_dir():
        raise AuditError(f"spool directory {spool} does not exist")
    stop = stop or threading.Event()
    seen: dict[Path, tuple[int, int]] = {}
    alert_due = True  # the first cycle sends what earlier runs left unsent
    retry_at = 0.0
    last_beat, beat_failed = float("-inf"), False
    cycles = 0
    with channel_for(channel, dsn, environment, release, timeout_s) as channel:
        while not stop.is_set() and (max_cycles is None or cycles < max_cycles):
            cycles += 1
            cycle = Cycle(cycles)
            seal_abandoned(spool)  # spool files of dead writers become *.jsonl first
            changed = {
                p: sig
                for p in completed_files(spool)
                if (sig := _signature(p)) is not None and seen.get(p) != sig
            }
            retry_due = bool(retry_at) and time.monotonic() >= retry_at
            if changed or alert_due or retry_due:
                try:
                    con = open_store(db, wait_s=wait_s, notify=notify)
                    try:
                        if changed:
                            summary = ingest(con, [str(p) for p in changed], notify=notify)
                            seen.update(changed)
                            cycle.files, cycle.ingested = len(changed), summary.ingested
                            cycle.rejected = summary.rejected
                            # Stays due until a run completes, even if this cycle fails.
                            alert_due = alert_due or summary.ingested > 0
                        if alert_due or retry_due:
                            cycle.alert = run_alerts(
                                con, channel=channel, detectors=detectors, config=config,
                                min_severity=min_severity, max_events=max_events,
                            )
                            alert_due = False
                            retry_at = (
                                0.0 if cycle.alert.ok
                                else time.monotonic() + retry_after_failure_s
                            )
                    finally:
                        con.close()
                except (AuditError, duckdb.Error, OSError) as exc:
                    cycle.error = first_line(exc)
            failed = cycle.error is not None or (cycle.alert is not None and not cycle.alert.ok)
            beat_failed = beat_failed or failed
            if monitor_slug and time.monotonic() - last_beat >= HEARTBEAT_S:
                check_in(channel, monitor_slug, "error" if beat_failed else "ok")
                last_beat, beat_failed = time.monotonic(), False
            if on_cycle:
                on_cycle(cycle)
            if max_cycles is not None and cycles >= max_cycles:
                break
            stop.wait(interval_s)
    return cycles
