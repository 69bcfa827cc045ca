"""One alerting run: select what is new, deliver it, record what Sentry accepted."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb

from audit.config import Config
from collectors.sent_alerts import SentAlert, record_sent
from frontends.alert.crons import monitored
from frontends.alert.delivery import DEFAULT_TIMEOUT_S, Delivery, SentryChannel
from frontends.alert.payload import event_for, summary_event
from frontends.alert.selection import DEFAULT_MAX, check_selection, select_new
from queries.finding import Finding

BATCH = 50  # envelopes sent before the accepted ones are recorded in the store


@dataclass
class AlertResult:
    """What one run did. ``ok`` is False when some finding could not be delivered."""

    found: int = 0  # findings given (or detected)
    filtered: int = 0  # left out by --min-severity / --detector
    already_sent: int = 0  # sent by an earlier run
    sent: list[tuple[Finding, str]] = field(default_factory=list)  # (finding, Sentry event id)
    summarised: list[Finding] = field(default_factory=list)  # over --max, in the summary event
    summary_event_id: str | None = None
    pending: list[tuple[Finding, Delivery]] = field(default_factory=list)  # go next run
    dry_run: bool = False
    would_send: list[Finding] = field(default_factory=list)  # dry run: the individual events
    would_summarise: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.pending

    @property
    def problem(self) -> str | None:
        """One line on what went wrong with delivery, or None."""
        if not self.pending:
            return None
        attempted = [d for _, d in self.pending if d.reason != "not_attempted"]
        first = attempted[0] if attempted else self.pending[0][1]
        n = len(self.pending)
        noun = "finding" if n == 1 else "findings"
        if first.reason == "rate_limited":
            wait = f", retry after {first.retry_after_s:.0f} s" if first.retry_after_s else ""
            what = f"Sentry is rate-limiting this project ({first.detail}{wait})"
        elif first.reason == "unreachable":
            what = f"Sentry is unreachable ({first.detail})"
        elif first.reason == "no_answer":
            what = f"Sentry did not answer ({first.detail})"
        else:
            what = f"Sentry did not accept the alerts ({first.detail})"
        return f"{what}: {n} {noun} not sent; they will be sent on the next run"


@contextmanager
def channel_for(
    channel: SentryChannel | None,
    dsn: str | None,
    environment: str | None,
    release: str | None,
    timeout_s: float,
    *,
    needed: bool = True,
) -> Iterator[SentryChannel | None]:
    """The channel given; else, when one is ``needed``, one made from ``dsn`` for the
    duration and closed after (a caller's own channel is never closed here)."""
    if channel is not None or not needed:
        yield channel
        return
    with SentryChannel(dsn, environment=environment, release=release,
                       timeout_s=timeout_s) as made:
        yield made


def send_findings(
    findings: Iterable[Finding],
    *,
    dsn: str | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    channel: SentryChannel | None = None,
    environment: str | None = None,
    release: str | None = None,
    detectors: Sequence[str] | None = None,
    min_severity: str = "info",
    max_events: int = DEFAULT_MAX,
    dry_run: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> AlertResult:
    """Send the findings not sent before to Sentry; record those Sentry accepted.

    With ``con`` (a writable store connection) findings already in ``sent_alerts`` are
    skipped and delivered ones are recorded there; without it every finding given is sent.
    Pass ``channel`` to reuse one Sentry channel across calls; otherwise one is made from
    ``dsn`` (default ``$SENTRY_DSN``) and closed again. ``dry_run`` contacts nobody and
    records nothing: the result's ``would_send`` / ``would_summarise`` say what would go.
    """
    check_selection(min_severity, max_events)
    findings = list(findings)
    with channel_for(channel, dsn, environment, release, timeout_s, needed=not dry_run) as chan:
        chosen = select_new(findings, con=con, detectors=detectors,
                            min_severity=min_severity, max_events=max_events)
        result = AlertResult(found=len(findings), filtered=chosen.filtered,
                             already_sent=chosen.already_sent, dry_run=dry_run)
        if dry_run:
            result.would_send, result.would_summarise = chosen.individual, chosen.summarised
            return result
        assert chan is not None
        _deliver(chan, con, chosen.individual, chosen.summarised, max_events, result)
        return result


def _deliver(
    channel: SentryChannel,
    con: duckdb.DuckDBPyConnection | None,
    individual: list[Finding],
    rest: list[Finding],
    max_events: int,
    result: AlertResult,
) -> None:
    """Send in batches; record each batch's accepted findings at once; stop at a failure."""
    queue = [(event_for(f), [f]) for f in individual]
    if rest:
        queue.append((summary_event(rest, max_events), rest))
    for start in range(0, len(queue), BATCH):
        batch = queue[start : start + BATCH]
        answers = channel.deliver([event for event, _ in batch])
        accepted: list[SentAlert] = []
        failed = False
        for event, carried in batch:
            event_id = event["event_id"]
            delivery = answers[event_id]
            if delivery.accepted:
                accepted.extend(
                    SentAlert(f.fingerprint, f.detector, f.entity, f.field, event_id)
                    for f in carried
                )
                if carried is rest:
                    result.summarised, result.summary_event_id = rest, event_id
                else:
                    result.sent.extend((f, event_id) for f in carried)
            else:
                failed = True
                result.pending.extend((f, delivery) for f in carried)
        if con is not None:
            record_sent(con, accepted)
        if failed:
            # Sentry is down, refusing or rate-limiting us: do not hammer it with the rest.
            skipped = Delivery(False, "not_attempted", "not attempted after a failure")
            for _, carried in queue[start + BATCH :]:
                result.pending.extend((f, skipped) for f in carried)
            return


def detect(
    con: duckdb.DuckDBPyConnection,
    *,
    detectors: Sequence[str] | None = None,
    config: Config | None = None,
) -> list[Finding]:
    """Run the detectors (queries.runner.check) over the store."""
    from queries.runner import check  # loads the detectors' SQL: only when a run needs it

    return check(con, detectors=list(detectors) if detectors else None, config=config)


def run_alerts(
    con: duckdb.DuckDBPyConnection,
    *,
    dsn: str | None = None,
    channel: SentryChannel | None = None,
    environment: str | None = None,
    release: str | None = None,
    detectors: Sequence[str] | None = None,
    config: Config | None = None,
    min_severity: str = "info",
    max_events: int = DEFAULT_MAX,
    dry_run: bool = False,
    monitor_slug: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> AlertResult:
    """Detect, then send what is new; with ``monitor_slug``, bracket the run in Sentry Crons
    check-ins (in progress, then ok, or error when the run failed or could not deliver)."""
    check_selection(min_severity, max_events)
    with (
        channel_for(channel, dsn, environment, release, timeout_s, needed=not dry_run) as chan,
        monitored(None if dry_run else chan, monitor_slug) as run,
    ):
        result = send_findings(
            detect(con, detectors=detectors, config=config),
            con=con, channel=chan, min_severity=min_severity,
            max_events=max_events, dry_run=dry_run,
        )
        run.failed = not result.ok
        return result
