"""Queries: the detectors (canned SQL under this package), findings, and history views.

    from collectors.store import open_store
    from queries import check, timeline, replay, owners

    con = open_store("audit.duckdb", read_only=True)
    for finding in check(con):
        print(finding.severity, finding.detector, finding.message)
"""

from queries.finding import Finding
from queries.history import owners, replay, timeline
from queries.runner import DETECTORS, SEVERITY, check

__all__ = ["DETECTORS", "SEVERITY", "Finding", "check", "owners", "replay", "timeline"]
