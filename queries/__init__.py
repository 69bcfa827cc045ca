"""Queries: the detectors (canned SQL under this package), findings, and history views.

    from collectors.store import open_store
    from queries import check, timeline, replay, owners

    con = open_store("audit.duckdb", read_only=True)
    for finding in check(con):
        print(finding.severity, finding.detector, finding.facts, finding.message)

The commit order the detectors and views read is built for a scope by ``commit_order``;
``detect`` runs the detectors on one already built.
"""

from queries.commit_order import CommitOrder, Scope, commit_order
from queries.finding import Finding, Witness
from queries.history import owners, replay, timeline
from queries.runner import DETECTORS, SEVERITY, check, detect

__all__ = ["DETECTORS", "SEVERITY", "CommitOrder", "Finding", "Scope", "Witness", "check",
           "commit_order", "detect", "owners", "replay", "timeline"]
