"""Reports of findings a person would rather look at than read.

``report(con)`` runs the detectors and gathers a ``Report``; ``render_html`` /
``write_html`` make one self-contained page of it (summary, then a swimlane timeline per
finding), ``render_terminal`` prints the same with rich. ``build_report`` takes findings made
elsewhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import duckdb

from audit.config import Config
from frontends.report.html import render_html, write_html
from frontends.report.model import DEFAULT_PER_FIELD, DEFAULT_TOP, Report, build_report
from frontends.report.terminal import render_terminal

if TYPE_CHECKING:
    from queries.commit_order import Progress

__all__ = [
    "Report",
    "build_report",
    "render_html",
    "render_terminal",
    "report",
    "write_html",
]


def report(
    con: duckdb.DuckDBPyConnection,
    *,
    config: Config | None = None,
    detectors: list[str] | None = None,
    entity: str | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    top: int = DEFAULT_TOP,
    per_field: int = DEFAULT_PER_FIELD,
    source: str = "",
    progress: Progress | None = None,
) -> Report:
    """Run the detectors on the store and gather everything a report shows; ``progress``
    as for `queries.runner.check`."""
    from queries.runner import check  # imported late: the detectors load their SQL files

    findings = check(con, detectors=detectors or None, entity=entity, since=since, until=until,
                     config=config, progress=progress)
    return build_report(con, findings, source=source, top=top, per_field=per_field)
