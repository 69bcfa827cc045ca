"""Which findings a run sends: those selected (severity, detector) that no earlier run
delivered, most important first, at most ``--max`` one by one and the rest in one summary."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import duckdb

from audit.errors import AuditError
from collectors.sent_alerts import already_sent
from frontends.severity import SEVERITY_RANK, rank
from queries.finding import SEVERITIES, Finding

DEFAULT_MAX = 50  # individual events per run; the rest go out as one summary event


@dataclass
class Selection:
    individual: list[Finding]  # one Sentry event each
    summarised: list[Finding]  # over --max: one summary event for all
    filtered: int  # left out by --min-severity / --detector
    already_sent: int  # delivered by an earlier run


def check_selection(min_severity: str, max_events: int) -> None:
    """Reject bad --min-severity / --max before anything is sent."""
    if min_severity not in SEVERITY_RANK:
        raise AuditError(f"unknown severity {min_severity!r}; use one of {', '.join(SEVERITIES)}")
    if max_events < 0:
        raise AuditError("--max must be 0 or more")


def prioritise(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first, newest first; one finding per Sentry issue before any repeat."""
    ordered = sorted(findings, key=lambda f: str(f.last_ts or ""), reverse=True)
    ordered.sort(key=lambda f: rank(f.severity), reverse=True)
    seen: set[tuple[str, str, str]] = set()
    firsts, repeats = [], []
    for f in ordered:
        group = (f.detector, f.entity, f.field)
        (repeats if group in seen else firsts).append(f)
        seen.add(group)
    return firsts + repeats


def select_new(
    findings: Iterable[Finding],
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    detectors: Sequence[str] | None = None,
    min_severity: str = "info",
    max_events: int = DEFAULT_MAX,
) -> Selection:
    """The findings to send; with ``con``, those in its ``sent_alerts`` are left out."""
    check_selection(min_severity, max_events)
    findings = list(findings)
    wanted = [
        f for f in findings
        if rank(f.severity) >= SEVERITY_RANK[min_severity]
        and (not detectors or f.detector in detectors)
    ]
    unique = list({f.fingerprint: f for f in wanted}.values())
    done = already_sent(con, (f.fingerprint for f in unique)) if con is not None else set()
    new = prioritise(f for f in unique if f.fingerprint not in done)
    return Selection(
        individual=new[:max_events],
        summarised=new[max_events:],
        filtered=len(findings) - len(wanted),
        already_sent=len(unique) - len(new),
    )
