"""Findings counted by their own severity, worst first: what every view that sums findings up
shows (the report's summary, `audit check`'s table). A detector may give its findings
different severities (a converging lost update is a warning), so the count is by finding,
never by detector."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from queries.finding import SEVERITIES, Finding

SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES, start=1)}


def level(severity: str) -> str:
    """The severity a finding counts as: its own, or error for one no detector gives. Nothing
    says such a finding is harmless, so every view ranks it, and an alert sends it to
    Sentry, as an error."""
    return severity if severity in SEVERITY_RANK else "error"


def rank(severity: str) -> int:
    """How bad a severity is, higher worse (`level`'s rank)."""
    return SEVERITY_RANK[level(severity)]


def by_severity(findings: Iterable[Finding]) -> list[tuple[str, int]]:
    """(severity, findings) pairs, worst first (`rank`), then by name."""
    counts = Counter(f.severity for f in findings)
    return sorted(counts.items(), key=lambda kv: (-rank(kv[0]), kv[0]))


def tally(counts: Iterable[tuple[str, int]]) -> str:
    """``2 errors, 1 warning``."""
    return ", ".join(
        f"{n} {severity}{'s' if n != 1 and severity in ('error', 'warning') else ''}"
        for severity, n in counts
    )
