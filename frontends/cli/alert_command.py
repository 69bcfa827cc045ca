"""`audit alert`: send new findings to Sentry, once each; once, on a schedule, or continuously.

A thin layer over frontends.alert (one run) and frontends.watch (the continuous loop).
Exit status: 0 when every new finding was delivered (or there was none), 2 when some could
not be (they are sent on the next run) or on any other error.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from audit.errors import AuditError
from frontends.cli.options import LOCK_WAIT_S, ConfigOption, DbOption, WaitOption
from frontends.printable import printable

if TYPE_CHECKING:
    from frontends.alert import AlertResult

# frontends.alert's defaults, repeated: importing it imports sentry_sdk (~50 ms), which every
# command would pay to define this one's options. tests/cli/test_startup.py keeps them equal.
DEFAULT_MAX = 50
DEFAULT_TIMEOUT_S = 15.0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _report(result: AlertResult) -> str:
    """One line on what a run did."""
    if result.dry_run:
        return (
            f"dry run: would send {_plural(len(result.would_send), 'finding')}"
            + (f" and summarise {len(result.would_summarise)} more in one event"
               if result.would_summarise else "")
            + f"; {result.already_sent} already sent, {result.filtered} not selected;"
            " nothing sent, nothing recorded"
        )
    parts = [f"sent {_plural(len(result.sent), 'finding')} to Sentry"]
    if result.summarised:
        parts.append(f"{len(result.summarised)} more in one summary event")
    if result.pending:
        parts.append(f"{len(result.pending)} not delivered")
    parts.append(f"{result.already_sent} already sent before")
    if result.filtered:
        parts.append(f"{result.filtered} not selected")
    return parts[0] + " (" + ", ".join(parts[1:]) + ")"


def _print_dry_run(result: AlertResult) -> None:
    for f in result.would_send:
        writers = "→".join(f.writers)
        print(printable(
            f"{f.severity:<8} {f.detector:<18} {f.entity} {f.field}  [{writers}]  {f.message}"
        ))
    if result.would_summarise:
        print(f"… and {len(result.would_summarise)} more in one summary event (--max)")


class _StopOnSignal:
    """SIGINT/SIGTERM ask the watcher to stop after the cycle in hand; a second SIGINT
    interrupts at once."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: object) -> None:
        if signum == signal.SIGINT and self.stop.is_set():
            raise KeyboardInterrupt
        print("stopping after the current cycle…", file=sys.stderr)
        self.stop.set()

    def __enter__(self) -> _StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


def alert(
    db: DbOption = None,
    wait: WaitOption = LOCK_WAIT_S,
    config: ConfigOption = None,
    dsn: Annotated[
        Optional[str],  # noqa: UP045 - typer reads the annotation at runtime
        typer.Option(
            "--dsn", metavar="DSN", envvar="SENTRY_DSN", show_envvar=True, help="Sentry DSN."
        ),
    ] = None,
    environment: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--environment", metavar="NAME", envvar="SENTRY_ENVIRONMENT", show_envvar=True,
            help="Sentry environment (default: production).",
        ),
    ] = None,
    release: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--release", metavar="VERSION", envvar="SENTRY_RELEASE", show_envvar=True,
            help="Sentry release (default: the SDK's guess, e.g. the git commit).",
        ),
    ] = None,
    detector: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--detector", metavar="NAME", help="Only this detector's findings (repeatable)."
        ),
    ] = None,
    min_severity: Annotated[
        str, typer.Option("--min-severity", metavar="LEVEL", help="info, warning or error.")
    ] = "info",
    max_events: Annotated[
        int,
        typer.Option(
            "--max", metavar="N",
            help="Individual events per run; the rest go in one summary event.",
        ),
    ] = DEFAULT_MAX,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be sent; send and record nothing.")
    ] = False,
    monitor_slug: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--monitor-slug", metavar="SLUG",
            help="Sentry Crons monitor to check in with (in progress, then ok or error), "
            "so a stopped audit job is noticed.",
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="SECONDS", help="Seconds to wait for Sentry's answers."),
    ] = DEFAULT_TIMEOUT_S,
    watch_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--watch", metavar="SPOOL_DIR",
            help="Keep running: ingest completed *.jsonl spool files as they appear and "
            "alert on new findings.",
        ),
    ] = None,
    interval: Annotated[
        float, typer.Option("--interval", metavar="SECONDS", help="Seconds between watch cycles.")
    ] = 2.0,
    max_cycles: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--max-cycles", hidden=True, help="Stop after N watch cycles (tests)."),
    ] = None,
) -> int:
    """Send new findings to Sentry, each once (recorded in the store after Sentry accepts it)."""
    from audit.config import load_config
    from frontends.alert import check_selection, run_alerts

    cfg = load_config(config)
    check_selection(min_severity, max_events)
    if dry_run and watch_dir is not None:
        raise AuditError("--dry-run cannot be combined with --watch")
    if interval <= 0:
        raise AuditError("--interval must be more than 0 seconds")
    if timeout <= 0:
        raise AuditError("--timeout must be more than 0 seconds")
    if watch_dir is not None:
        return _watch(watch_dir, db, wait, dsn, environment, release, detector, cfg, min_severity,
                      max_events, monitor_slug, timeout, interval, max_cycles)

    from collectors.store import open_store

    # create=False: rather than alerting "nothing new" from a fresh empty store (a cron job
    # started in the wrong directory, say), say there is no store.
    con = open_store(db, read_only=dry_run, create=False, wait_s=wait)
    try:
        result = run_alerts(
            con, dsn=dsn, environment=environment, release=release, timeout_s=timeout,
            detectors=detector, config=cfg, min_severity=min_severity, max_events=max_events,
            dry_run=dry_run, monitor_slug=monitor_slug,
        )
    finally:
        con.close()
    if dry_run:
        _print_dry_run(result)
    print(_report(result))
    if not result.ok:
        print(f"error: {printable(result.problem)}", file=sys.stderr)
        return 2
    return 0


def _watch(watch_dir, db, wait, dsn, environment, release, detectors, cfg, min_severity, max_events,
           monitor_slug, timeout, interval, max_cycles) -> int:
    from frontends.alert import SentryChannel
    from frontends.watch import Cycle, watch

    def on_cycle(cycle: Cycle) -> None:
        if cycle.error:
            print(printable(f"warning: cycle {cycle.number}: {cycle.error}; retrying"),
                  file=sys.stderr)
        if cycle.files:
            print(f"ingested {_plural(cycle.ingested, 'event')} from "
                  f"{_plural(cycle.files, 'file')}"
                  + (f" ({cycle.rejected} rejected)" if cycle.rejected else ""), flush=True)
        result = cycle.alert
        if result is not None and (result.sent or result.summarised or result.pending):
            print(_report(result), flush=True)
            if not result.ok:
                print(f"error: {printable(result.problem)}", file=sys.stderr, flush=True)

    channel = SentryChannel(dsn, environment=environment, release=release, timeout_s=timeout)
    stop = threading.Event()
    try:
        with _StopOnSignal(stop):
            print(f"watching {watch_dir} every {interval:g} s; Ctrl-C stops", file=sys.stderr,
                  flush=True)
            cycles = watch(
                watch_dir, db=db, wait_s=wait, channel=channel, stop=stop, interval_s=interval,
                max_cycles=max_cycles, on_cycle=on_cycle, detectors=detectors, config=cfg,
                min_severity=min_severity, max_events=max_events, monitor_slug=monitor_slug,
                timeout_s=timeout,
            )
    finally:
        channel.close()
    print(f"stopped after {_plural(cycles, 'cycle')}", file=sys.stderr)
    return 0


def register(app: typer.Typer) -> None:
    app.command("alert")(alert)
