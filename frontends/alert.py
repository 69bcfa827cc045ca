"""Findings to Sentry, once each.

Each finding becomes one Sentry event: its level is the finding's severity, its fingerprint
``[detector, entity, field]`` (so repeats of one problem group into one Sentry issue), its
tags say which detector and writers, and a ``conflict`` context carries the witnesses.

"Once each" rests on three rules:

* a finding is recorded in the store's ``sent_alerts`` only after Sentry answered its
  envelope with a 2xx (the transport below reports, per envelope, what Sentry answered);
* anything else (refused connection, 5xx, 429 rate limit, no answer in time) leaves it
  unrecorded, so the next run sends it again, and the run reports the failure;
* every event's id is derived from the finding's fingerprint, so if an answer is lost after
  Sentry stored the event (a timeout, a crash before recording), the resend carries the same
  id and Sentry discards it as a duplicate instead of alerting twice.

The alerting uses its own ``sentry_sdk.Client`` and ``Scope``; it never calls
``sentry_sdk.init`` and installs no integrations, so a host application's Sentry set-up
(its DSN, tags, breadcrumbs, hooks) neither leaks into these events nor is replaced.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import sentry_sdk
from sentry_sdk.client import SDK_INFO
from sentry_sdk.crons import MonitorStatus, capture_checkin
from sentry_sdk.scope import use_scope
from sentry_sdk.transport import HttpTransport
from sentry_sdk.utils import BadDsn

from audit.config import Config
from audit.errors import AuditError
from queries.finding import SEVERITIES, Finding

DEFAULT_MAX = 50  # individual events per run; the rest go out as one summary event
DEFAULT_TIMEOUT_S = 15.0  # how long one batch may take to be answered
BATCH = 50  # envelopes per flush; well under the SDK's transport queue (100)
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
# Event ids are uuid5(fingerprint) in this namespace: the same finding always has the same id.
_EVENT_NS = uuid.UUID("8f1c2b9e-4a43-4c6e-9a51-2f6f3e0c7d15")
_TAG_MAX = 200  # Sentry truncates longer tag values; we cut them ourselves, visibly
_HEX = re.compile(r"[0-9a-f]+")


# --- what Sentry answered ------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """What became of one envelope."""

    accepted: bool
    reason: str = "accepted"  # accepted|rate_limited|rejected|unreachable|no_answer|not_attempted
    detail: str = ""
    retry_after_s: float | None = None


class DeliveryTransport(HttpTransport):
    """sentry-sdk's HTTP transport, noting per envelope whether Sentry accepted it.

    sentry-sdk is fire-and-forget: ``capture_event`` returns before anything is sent and a
    failed POST is only logged. Its maintainers point at subclassing the transport for
    delivery outcomes; the per-envelope seams in 2.x are ``_send_envelope`` (runs on the
    worker thread, once per envelope, raises on network errors) and ``_handle_response``
    (sees each HTTP answer). Rate limits stay the SDK's own: after a 429 or an
    ``X-Sentry-Rate-Limits`` header it holds envelopes back without a request, which we see
    as an envelope that got no answer and report as rate limited.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self._lock = threading.Lock()
        self._deliveries: dict[str, Delivery] = {}
        self._answer: Delivery | None = None  # set by _handle_response for the envelope in hand

    def _send_envelope(self, envelope: Any) -> None:
        event_id = envelope.headers.get("event_id")
        self._answer = None
        try:
            super()._send_envelope(envelope)
        except Exception as exc:
            self._note(event_id, Delivery(False, "unreachable", _network_error(exc, self)))
            raise
        self._note(
            event_id,
            self._answer
            or Delivery(
                False, "rate_limited", "held back by Sentry's rate limit", self.retry_after_s()
            ),
        )

    def _handle_response(self, response: Any, envelope: Any) -> None:
        super()._handle_response(response, envelope)
        status = response.status
        if 200 <= status < 300:
            self._answer = Delivery(True, detail=f"HTTP {status}")
        elif status == 429:
            self._answer = Delivery(False, "rate_limited", "HTTP 429", self.retry_after_s())
        else:
            why = _error_detail(getattr(response, "data", b""))
            detail = f"HTTP {status}" + (f": {why}" if why else "")
            self._answer = Delivery(False, "rejected", detail)

    def _note(self, event_id: str | None, delivery: Delivery) -> None:
        if event_id:
            with self._lock:
                self._deliveries[event_id] = delivery

    def forget(self, event_ids: Iterable[str]) -> None:
        with self._lock:
            for event_id in event_ids:
                self._deliveries.pop(event_id, None)

    def delivery(self, event_id: str) -> Delivery | None:
        with self._lock:
            return self._deliveries.get(event_id)

    def retry_after_s(self) -> float | None:
        """Seconds until the SDK's own rate-limit backoff ends (None: not rate limited)."""
        now = datetime.now(UTC)
        ends = [until for until in self._disabled_until.values() if until > now]
        return max(ends).timestamp() - now.timestamp() if ends else None


def _error_detail(body: object) -> str:
    """Sentry explains a refusal as JSON ``{"detail": ...}``; a proxy's HTML page says nothing."""
    if not isinstance(body, bytes) or not body:
        return ""
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return ""
    return " ".join(str(detail).split())[:200] if detail else ""


def _network_error(exc: BaseException, transport: HttpTransport) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    host = transport.parsed_dsn.netloc if transport.parsed_dsn else "Sentry"
    return f"cannot reach {host}: {errno.group(1).strip() if errno else text.splitlines()[0]}"


# --- a dedicated Sentry client -------------------------------------------------------------


class SentryChannel:
    """One Sentry client of our own, with its own scope; reuse it across runs (watch mode).

    Reusing it keeps the SDK's rate-limit backoff in force between runs.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        environment: str | None = None,
        release: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        dsn = dsn or os.environ.get("SENTRY_DSN")
        if not dsn:
            raise AuditError("no Sentry DSN: pass --dsn or set SENTRY_DSN")
        options: dict[str, Any] = {}
        if environment:
            options["environment"] = environment
        if release:
            options["release"] = release
        # Making a client renames the SDK process-wide after its integrations (none here);
        # put the host's name back.
        sdk_name = SDK_INFO["name"]
        try:
            self.client = sentry_sdk.Client(
                dsn=dsn,
                # A subclass per timeout: the transport builds its connection pool, with
                # its request timeout, as it is constructed.
                transport=type("DeliveryTransport", (DeliveryTransport,), {"TIMEOUT": timeout_s}),
                # Nothing global: no integrations (they hook logging, threads, excepthook),
                # no sessions, no client reports, no backpressure thread.
                default_integrations=False,
                auto_enabling_integrations=False,
                integrations=[],
                auto_session_tracking=False,
                send_client_reports=False,
                enable_backpressure_handling=False,
                max_breadcrumbs=0,
                attach_stacktrace=False,
                sample_rate=1.0,
                **options,
            )
        except BadDsn as exc:
            raise AuditError(f"invalid Sentry DSN: {exc}") from None
        finally:
            SDK_INFO["name"] = sdk_name
        transport = self.client.transport
        if not isinstance(transport, DeliveryTransport):
            raise AuditError("invalid Sentry DSN: the Sentry SDK set up no HTTP transport for it")
        self.transport = transport
        self.timeout_s = timeout_s
        # A fresh scope, not a fork of the current one: nothing of the host's scope (tags,
        # user, breadcrumbs) ends up in the alerts.
        self.scope = sentry_sdk.Scope(client=self.client)

    def deliver(self, events: Sequence[dict[str, Any]]) -> dict[str, Delivery]:
        """Send events (each with its ``event_id``); wait for Sentry's answers."""
        ids = [event["event_id"] for event in events]
        self.transport.forget(ids)
        dropped: set[str] = set()
        # use_scope makes our client the current one while the event is prepared, so event
        # processors a host's integrations registered find no integration of theirs and stay
        # out of it.
        with use_scope(self.scope):
            for event in events:
                if self.client.capture_event(dict(event), scope=self.scope) is None:
                    dropped.add(event["event_id"])
        self.client.flush(timeout=self.timeout_s)
        out = {}
        for event_id in ids:
            delivery = self.transport.delivery(event_id)
            if delivery is None:
                delivery = (
                    Delivery(False, "rejected", "the Sentry SDK dropped the event")
                    if event_id in dropped
                    else Delivery(False, "no_answer", f"no answer within {self.timeout_s:g} s")
                )
            out[event_id] = delivery
        return out

    def check_in(
        self,
        monitor_slug: str,
        status: str,
        *,
        check_in_id: str | None = None,
        duration_s: float | None = None,
    ) -> str | None:
        """A Sentry Crons check-in (``MonitorStatus.IN_PROGRESS``/``OK``/``ERROR``)."""
        with use_scope(self.scope):
            check_in_id = capture_checkin(
                monitor_slug=monitor_slug,
                check_in_id=check_in_id,
                status=status,
                duration=duration_s,
            )
        self.client.flush(timeout=self.timeout_s)
        return check_in_id

    def close(self) -> None:
        self.client.close(timeout=0)  # deliver() already waited for its answers

    def __enter__(self) -> SentryChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- findings as Sentry events -------------------------------------------------------------


def event_id_for(fingerprint: str) -> str:
    """The Sentry event id of a finding: fixed by its fingerprint, so a resend is a duplicate."""
    return uuid.uuid5(_EVENT_NS, fingerprint).hex


def _tag(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= _TAG_MAX else text[: _TAG_MAX - 1] + "…"


def writers_tag(writers: Sequence[str]) -> str:
    """Writers in witness order, consecutive repeats folded: ``workflow→instantiation``."""
    folded = [w for i, w in enumerate(writers) if i == 0 or w != writers[i - 1]]
    return _tag("→".join(folded))


def _trace_context(finding: Finding) -> dict[str, str] | None:
    """Link the event to the trace of the last witness that carries OpenTelemetry ids."""
    for witness in reversed(finding.witnesses):
        trace_id, span_id = witness.get("trace_id"), witness.get("span_id")
        if (
            isinstance(trace_id, str)
            and isinstance(span_id, str)
            and len(trace_id) == 32
            and len(span_id) == 16
            and _HEX.fullmatch(trace_id.lower())
            and _HEX.fullmatch(span_id.lower())
        ):
            return {"trace_id": trace_id.lower(), "span_id": span_id.lower()}
    return None


def event_for(finding: Finding) -> dict[str, Any]:
    """The Sentry event for one finding."""
    tags = {"detector": _tag(finding.detector), "writers": writers_tag(finding.writers)}
    if finding.entity_type:
        tags["entity_type"] = _tag(finding.entity_type)
    tags["entity"] = _tag(finding.entity)
    tags["field"] = _tag(finding.field)
    contexts: dict[str, Any] = {
        "conflict": {
            "detector": finding.detector,
            "entity": finding.entity,
            "entity_type": finding.entity_type,
            "field": finding.field,
            "writers": list(finding.writers),
            "event_ids": list(finding.event_ids),
            "first_ts": finding.first_ts,
            "last_ts": finding.last_ts,
            "finding_fingerprint": finding.fingerprint,
            # Absent facts (no trace id, no source_ts) only clutter Sentry's context view.
            "witnesses": [
                {k: v for k, v in w.items() if v is not None} for w in finding.witnesses
            ],
        }
    }
    trace = _trace_context(finding)
    if trace:
        contexts["trace"] = trace
    return {
        "event_id": event_id_for(finding.fingerprint),
        "level": finding.severity if finding.severity in _RANK else "error",
        "message": finding.message,
        "logger": "conflict-audit",
        "transaction": f"{finding.entity} {finding.field}",
        "fingerprint": [finding.detector, finding.entity, finding.field],
        "tags": tags,
        "contexts": contexts,
    }


SUMMARY_LISTED = 100  # findings named in a summary event's context


def summary_event(findings: Sequence[Finding], max_events: int) -> dict[str, Any]:
    """One event standing for the findings over ``--max``."""
    by_detector = Counter(f.detector for f in findings)
    counts = ", ".join(f"{name} ×{n}" for name, n in by_detector.most_common())
    worst = max((f.severity for f in findings), key=lambda s: _RANK.get(s, 0))
    key = "\x1f".join(sorted(f.fingerprint for f in findings))
    return {
        "event_id": event_id_for("summary\x1f" + key),
        "level": worst if worst in _RANK else "error",
        "message": (
            f"{len(findings)} more conflict findings were not sent one by one "
            f"(at most {max_events} a run): {counts}. `audit check` lists them all."
        ),
        "logger": "conflict-audit",
        "fingerprint": ["conflict-audit", "summary"],
        "tags": {"detector": "summary"},
        "contexts": {
            "summary": {
                "count": len(findings),
                "by_detector": dict(by_detector),
                "findings": [
                    {
                        "detector": f.detector,
                        "entity": f.entity,
                        "field": f.field,
                        "severity": f.severity,
                        "finding_fingerprint": f.fingerprint,
                    }
                    for f in findings[:SUMMARY_LISTED]
                ],
            }
        },
    }


# --- the store's record of what was sent ---------------------------------------------------


def already_sent(con: duckdb.DuckDBPyConnection, fingerprints: Sequence[str]) -> set[str]:
    if not fingerprints:
        return set()
    rows = con.execute(
        "SELECT fingerprint FROM sent_alerts "
        "WHERE fingerprint IN (SELECT unnest(?::VARCHAR[]))",
        [list(fingerprints)],
    ).fetchall()
    return {row[0] for row in rows}


def record_sent(con: duckdb.DuckDBPyConnection, sent: Sequence[tuple[Finding, str]]) -> None:
    """Remember findings Sentry accepted (with the id of the event that carried them)."""
    if not sent:
        return
    columns = list(zip(*[(f.fingerprint, f.detector, f.entity, f.field, eid) for f, eid in sent],
                       strict=True))
    con.execute(
        "INSERT OR IGNORE INTO sent_alerts "
        "(fingerprint, detector, entity, field, sentry_event_id, sent_at) "
        "SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
        "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), current_timestamp",
        [list(c) for c in columns],
    )


# --- one alerting run ----------------------------------------------------------------------


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


def _prioritise(findings: list[Finding]) -> list[Finding]:
    """Most severe first, newest first; one finding per Sentry issue before any repeat."""
    ordered = sorted(findings, key=lambda f: f.last_ts or "", reverse=True)
    ordered.sort(key=lambda f: _RANK.get(f.severity, len(_RANK)), reverse=True)
    seen: set[tuple[str, str, str]] = set()
    firsts, repeats = [], []
    for f in ordered:
        group = (f.detector, f.entity, f.field)
        (repeats if group in seen else firsts).append(f)
        seen.add(group)
    return firsts + repeats


def check_selection(min_severity: str, max_events: int) -> None:
    """Reject bad --min-severity / --max before anything is sent."""
    if min_severity not in _RANK:
        raise AuditError(f"unknown severity {min_severity!r}; use one of {', '.join(SEVERITIES)}")
    if max_events < 0:
        raise AuditError("--max must be 0 or more")


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
    made = SentryChannel(dsn, environment=environment, release=release, timeout_s=timeout_s)
    try:
        yield made
    finally:
        made.close()


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
    Pass ``channel`` to reuse one Sentry client across calls; otherwise one is made from
    ``dsn`` (default ``$SENTRY_DSN``) and closed again. ``dry_run`` contacts nobody and
    records nothing: the result's ``would_send`` / ``would_summarise`` say what would go.
    """
    check_selection(min_severity, max_events)
    findings = list(findings)
    result = AlertResult(found=len(findings), dry_run=dry_run)
    with channel_for(channel, dsn, environment, release, timeout_s, needed=not dry_run) as chan:
        wanted = [
            f for f in findings
            if _RANK.get(f.severity, len(_RANK)) >= _RANK[min_severity]
            and (not detectors or f.detector in detectors)
        ]
        result.filtered = len(findings) - len(wanted)
        unique = list({f.fingerprint: f for f in wanted}.values())
        done = already_sent(con, [f.fingerprint for f in unique]) if con is not None else set()
        new = [f for f in unique if f.fingerprint not in done]
        result.already_sent = len(unique) - len(new)
        ordered = _prioritise(new)
        individual, rest = ordered[:max_events], ordered[max_events:]
        if dry_run:
            result.would_send, result.would_summarise = individual, rest
            return result
        assert chan is not None
        _deliver(chan, con, individual, rest, max_events, result)
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
        accepted: list[tuple[Finding, str]] = []
        failed = False
        for event, carried in batch:
            delivery = answers[event["event_id"]]
            if delivery.accepted:
                accepted.extend((f, event["event_id"]) for f in carried)
                if carried is rest:
                    result.summarised, result.summary_event_id = rest, event["event_id"]
                else:
                    result.sent.extend((f, event["event_id"]) for f in carried)
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
    from queries.runner import check  # the detectors sit before alerting in the data flow

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
    with channel_for(channel, dsn, environment, release, timeout_s, needed=not dry_run) as chan:
        check_in_id = None
        started = time.monotonic()
        if monitor_slug and not dry_run:
            assert chan is not None
            check_in_id = chan.check_in(monitor_slug, MonitorStatus.IN_PROGRESS)
        try:
            result = send_findings(
                detect(con, detectors=detectors, config=config),
                con=con, channel=chan, min_severity=min_severity,
                max_events=max_events, dry_run=dry_run,
            )
        except BaseException:
            if check_in_id and chan is not None:
                chan.check_in(monitor_slug, MonitorStatus.ERROR, check_in_id=check_in_id,
                              duration_s=time.monotonic() - started)
            raise
        if check_in_id and chan is not None:
            chan.check_in(
                monitor_slug, MonitorStatus.OK if result.ok else MonitorStatus.ERROR,
                check_in_id=check_in_id, duration_s=time.monotonic() - started,
            )
        return result
