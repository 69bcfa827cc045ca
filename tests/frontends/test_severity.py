"""One rank of severities for every view that orders findings (frontends/severity.py): a
severity no detector gives ranks as an error, in `audit check`'s table and the report as in
the alerts (tests/frontends/test_alert_sentry.py)."""

from __future__ import annotations

from collectors.store import open_store
from frontends.report.html import render_html
from frontends.report.model import build_report
from frontends.severity import by_severity
from queries.finding import Finding


def _found(entity: str, severity: str, second: int) -> Finding:
    return Finding(detector="chain_break", entity=entity, field="status", writers=["user"],
                   event_ids=[f"{entity}-1"], first_ts="2025-01-01T00:00:00Z",
                   last_ts=f"2025-01-01T00:00:{second:02d}Z", severity=severity,
                   message=f"{severity} on {entity}")


FINDINGS = [_found("block-I", "info", 9), _found("block-W", "warning", 8),
            _found("block-C", "critical", 1), _found("block-E", "error", 4)]


def test_the_summary_counts_an_unknown_severity_with_the_errors():
    assert by_severity(FINDINGS) == [("critical", 1), ("error", 1), ("warning", 1), ("info", 1)]


def test_the_report_ranks_an_unknown_severity_with_the_errors(tmp_path):
    con = open_store(tmp_path / "store.duckdb")
    report = build_report(con, FINDINGS, top=2)
    # errors first, the more recent first among them; then the warning, then the info
    assert [g.entity for g in report.shown + report.rest] == [
        "block-E", "block-C", "block-W", "block-I"]
    assert report.shown[1].severity == "critical"


def test_a_detectors_tile_in_the_html_counts_every_severity_it_gave(tmp_path):
    odd = _found("block-X", 'crit"<i>', 2)
    report = build_report(open_store(tmp_path / "store.duckdb"), [*FINDINGS, odd], top=0)
    page = render_html(report)
    tile = page[page.index('data-detector="chain_break"'):]
    tile = tile[:tile.index("</button>")]
    assert [part.split("</span>")[1] for part in tile.split('<span class="sev-dot">')[1:]] == [
        "1 crit&quot;&lt;i&gt;", "1 critical", "1 error", "1 warning", "1 info"]
