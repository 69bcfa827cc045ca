"""The report as one self-contained HTML page: no CDN, no network, inline CSS/JS/SVG only.

Summary first (findings per severity and per detector, per writer pair, the contested
fields), then each entity/field group with a swimlane per finding and beside it its
explanation and what its detector measured, then every other finding listed. Every value
from the store is escaped; a Content-Security-Policy forbids the page any network access.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from datetime import datetime
from html import escape
from pathlib import Path

from frontends.report import svg
from frontends.report.assets import CSS, ERROR_TRAP, SCRIPT
from frontends.report.facts import describe
from frontends.report.model import FieldFindings, Report, Swimlane
from frontends.report.values import NOT_READ, ellipsis, full, label
from frontends.report.values import attr as _a
from frontends.severity import rank
from queries.finding import Finding

SUMMARY_ROWS = 8  # rows of a summary table in view; the rest fold away
# Past these, findings without a timeline are counted, not listed (see _Budget).
LISTED_FINDINGS = 5000
LISTED_FIELDS = 2000
def _script_hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


# No network at all, and only the page's own two scripts may run (by hash): should a value
# ever slip through escaping as a <script>, the browser still refuses it.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; "
    f"script-src {_script_hash(ERROR_TRAP)} {_script_hash(SCRIPT)}; "
    "img-src data:; form-action 'none'; base-uri 'none'"
)


def _t(value: object) -> str:
    return escape(str(value), quote=True)


def _when(moment: datetime | str | None) -> str:
    if isinstance(moment, datetime):
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    return str(moment) if moment else "—"


def _colours(report: Report) -> dict[str, int]:
    """One colour per writer across the whole page, in order of first appearance."""
    writers: dict[str, int] = {}
    for group in report.shown:
        for lane in group.swimlanes:
            for w in lane.lanes:
                writers.setdefault(w, len(writers))
    for f in report.findings:
        for w in f.writers:
            writers.setdefault(w, len(writers))
    return writers


_FILTER_TITLE = "show only these findings (click again for all)"


def _summary(report: Report) -> str:
    total = len(report.findings)
    severities = [
        f"<button class=\"severity sev-{_t(sev)}\" type=\"button\" data-severity={_a(sev)} "
        f"aria-pressed=\"false\" title=\"{_FILTER_TITLE}\"><span class=\"n\">{n}</span>"
        f"<span class=\"name\"><span class=\"sev-dot\"></span>{_t(sev)}</span></button>"
        for sev, n in report.by_severity
    ]
    tiles = []
    for name, sevs in report.by_detector:
        parts = " ".join(  # every severity the detector gave, worst first, as in the totals
            f"<span class=\"sev-{_t(s)}\"><span class=\"sev-dot\"></span>{sevs[s]} {_t(s)}</span>"
            for s in sorted(sevs, key=lambda s: (-rank(s), s))
        )
        tiles.append(
            f"<button class=\"detector\" type=\"button\" data-detector={_a(name)} "
            f"aria-pressed=\"false\" title=\"{_FILTER_TITLE}\">"
            f"<span class=\"n\">{sevs.total()}</span><span class=\"name\">{_t(name)}</span>"
            f"<span class=\"sevs\">{parts}</span></button>"
        )
    most = max((n for _, n in report.by_writer_pair), default=1)
    pairs = [
        f"<tr><td>{_t(pair)}</td><td class=\"num\"><span class=\"bar\" "
        f"style=\"width:{round(60 * n / most)}px\"></span>{n}</td></tr>"
        for pair, n in report.by_writer_pair
    ]
    contested = [
        f"<tr><td><code>{_t(c.field)}</code></td><td class=\"num\">{c.findings}</td>"
        f"<td class=\"num\">{c.entities}</td><td class=\"list\">{_t(', '.join(c.writers))}</td>"
        f"<td class=\"list\">{_t(', '.join(c.detectors))}</td></tr>"
        for c in report.contested
    ]
    return (
        f"<section id=\"summary\"><h2>{total} finding{'s' if total != 1 else ''}</h2>"
        f"<div class=\"tiles severities\">{''.join(severities)}</div>"
        f"<div class=\"tiles\">{''.join(tiles)}</div>"
        "<div class=\"columns\">"
        "<div><h2>Who overwrote whom</h2>"
        + _table("<th>writers</th><th class=\"num\">findings</th>", pairs, "writer pairs")
        + "</div><div><h2>Contested fields</h2>"
        + _table("<th>field</th><th class=\"num\">findings</th><th class=\"num\">entities</th>"
                 "<th>writers</th><th>detectors</th>", contested, "fields")
        + "</div></div></section>"
    )


def _table(head: str, rows: list[str], what: str) -> str:
    """The first rows in view; the long tail of a big store folded away below them."""
    first, rest = rows[:SUMMARY_ROWS], rows[SUMMARY_ROWS:]
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(first)}</tbody></table>"
    if rest:
        table += (
            f"<details class=\"more-rows\"><summary>{len(rest)} more {_t(what)}</summary>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rest)}</tbody></table>"
            "</details>"
        )
    return table


LEGEND = (
    "<div class='legend'>"
    "<span><svg width='20' height='20'><circle cx='10' cy='10' r='7' fill='#3366cc' "
    "stroke='#1d2330' stroke-width='2.5'/></svg> witness (W1, W2… in commit order)</span>"
    "<span><svg width='14' height='14'><circle cx='7' cy='7' r='5' fill='#3366cc' "
    "opacity='.55'/></svg> other write to the field</span>"
    "<span><code>v3</code> version the write made</span>"
    "<span><s style='color:#c62828'>value</s> value overwritten by a later witness</span>"
    "<span><svg width='46' height='12'><rect x='2' y='3' width='42' height='6' rx='3' "
    "fill='#3366cc' opacity='.3'/><line x1='2' x2='2' y1='0' y2='12' stroke='#3366cc' "
    "stroke-width='2'/></svg> from the version the writer had read (saw v1) to its write</span>"
    "<span>time runs left to right, gaps compressed; the axis gives the real gaps</span>"
    "</div>"
)


def _witness_list(lane: Swimlane) -> str:
    by_id = {w.event_id: w for w in lane.writes}
    items = []
    for n, event_id in enumerate(lane.witnesses, 1):
        w = by_id.get(event_id)
        if w is None:
            continue
        struck = event_id in lane.overwritten
        version = f" v{w.version}" if w.version is not None else ""
        seen = f", had read v{w.base_version}" if w.base_version is not None else ""
        trace = f" <span class=\"muted mono\">trace {_t(w.trace_id)}</span>" if w.trace_id else ""
        # A blind write's old value is unknown: say so, rather than show nothing.
        unread = f"<span class=\"not-read\">{_t(NOT_READ)}</span> → " if w.blind else ""
        items.append(
            f"<li data-event-id={_a(event_id)}><span class=\"w\">W{n}</span>"
            f"<b>{_t(w.writer)}</b>{_t(' (' + w.actor + ')' if w.actor else '')}"
            f"{_t(version)}{_t(seen)} at <span class=\"mono\">{_t(svg.iso(w.ts_us))}</span>: "
            f"{unread}<code title={_a(full(w.new))} class={_a('struck' if struck else 'val')}>"
            f"{_t(label(w.new, 40))}</code>{trace} "
            f"<span class=\"muted mono\">{_t(event_id)}</span></li>"
        )
    return f"<ol class=\"witnesses\">{''.join(items)}</ol>"


def _filter_attrs(f: Finding) -> str:
    """What the summary's tiles filter by, and the finding's id."""
    return (f"data-detector={_a(f.detector)} data-severity={_a(f.severity)} "
            f"data-fingerprint={_a(f.fingerprint)}")


def _explanation(f: Finding) -> str:
    """The finding's message, then what its detector measured as a definition list
    (frontends/report/facts.py); a tag such as "same value" beside the detector's name."""
    facts = describe(f)
    tags = "".join(f" <span class=\"fact-tag\">{_t(tag)}</span>" for tag in facts.tags)
    rows = "".join(
        f"<dt>{_t(fact.term)}</dt><dd>{_t(fact.value)}"
        + (f" <span class=\"muted\">({_t(fact.note)})</span>" if fact.note else "") + "</dd>"
        for fact in facts.items
    )
    return (
        f"<div class=\"explanation sev-{_t(f.severity)}\" {_filter_attrs(f)}>"
        f"<div class=\"tag\">{_t(f.detector)} · {_t(f.severity)}{tags}</div>"
        f"<p class=\"message\">{_t(f.message)}</p>"
        + (f"<dl class=\"facts\">{rows}</dl>" if rows else "") + "</div>"
    )


def _finding_card(lane: Swimlane, colours: dict[str, int]) -> str:
    """One story: its swimlane, and beside it each finding's explanation and facts, then the
    witnesses."""
    explanations = "".join(_explanation(f) for f in lane.findings)
    return (
        f"<article class=\"story sev-{_t(lane.finding.severity)}\">"
        f"<div class=\"timeline\">{svg.render(lane, colours)}</div>"
        f"<div class=\"explain\">{explanations}{_witness_list(lane)}</div></article>"
    )


class _Budget:
    """How many more findings the page may list one by one: a store with half a million
    findings must still give a page a browser opens, so past the budget fields are only
    counted (`audit check --format json` has every one)."""

    def __init__(self, findings: int):
        self.findings = findings

    def take(self, findings: list[Finding]) -> list[Finding]:
        taken = findings[: max(0, self.findings)]
        self.findings -= len(taken)
        return taken


def _finding_rows(findings: list[Finding], budget: _Budget, entity: str) -> str:
    listed = budget.take(findings)
    rows = [
        f"<tr class=\"finding-row sev-{_t(f.severity)}\" {_filter_attrs(f)}>"
        f"<td><span class=\"sev-dot\"></span><code>{_t(f.detector)}</code>"
        f"<div class=\"muted\">{_t(f.severity)}</div></td>"
        f"<td class=\"mono\">{_t(f.first_ts)}</td><td>{_t(', '.join(f.writers))}</td>"
        f"<td>{_t(f.message)}<div class=\"facts-line muted\">{_t(describe(f).line())}</div>"
        "</td></tr>"
        for f in listed
    ]
    unlisted = len(findings) - len(listed)
    note = (
        f"<p class=\"muted\">{unlisted:,} more not listed here, to keep this page light; "
        f"<code>audit check --entity {_t(shlex.quote(entity))} --format json</code> "
        "has them all.</p>" if unlisted else ""
    )
    table = (
        "<table><thead><tr><th>detector</th><th>first</th><th>writers</th>"
        f"<th>explanation</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        if rows else ""
    )
    return table + note


def _group_title(group: FieldFindings) -> str:
    kind = f" <span class=\"pill\">{_t(group.entity_type)}</span>" if group.entity_type else ""
    n = len(group.findings)
    return (
        f"<h3><code>{_t(group.entity)}</code> · <code>{_t(group.field)}</code></h3>{kind}"
        f"<span class=\"pill sev sev-{_t(group.severity)}\">{n} finding{'s' if n != 1 else ''}"
        f"</span><span class=\"pill\">{_t(', '.join(group.detectors))}</span>"
        f"<span class=\"pill\">{_t(' · '.join(group.writers))}</span>"
    )


def _shown(report: Report, colours: dict[str, int], budget: _Budget) -> str:
    if not report.shown:
        return ""
    toc = "".join(
        f"<a href=\"#{g.anchor}\" title={_a(g.entity + ' ' + g.field)}>"
        f"{_t(label_of(g))} <b>{len(g.findings)}</b></a>"
        for g in report.shown
    )
    groups = []
    for g in report.shown:
        cards = "".join(_finding_card(lane, colours) for lane in g.swimlanes)
        more = g.undrawn
        extra = (
            f"<details class=\"rest-field\"><summary>{len(more)} more finding"
            f"{'s' if len(more) != 1 else ''} on this field</summary>"
            f"{_finding_rows(more, budget, g.entity)}</details>" if more else ""
        )
        groups.append(
            f"<section class=\"field-group sev-{_t(g.severity)}\" id=\"{g.anchor}\">"
            f"<header>{_group_title(g)}</header>{cards}{extra}</section>"
        )
    title = (
        f"The {len(report.shown)} most serious field{'s' if len(report.shown) != 1 else ''}"
        if report.rest else "Findings by entity and field"
    )
    return (
        f"<section id=\"fields\"><h2>{_t(title)}</h2><nav class=\"toc\">{toc}</nav>{LEGEND}"
        f"{''.join(groups)}</section>"
    )


def label_of(group: FieldFindings) -> str:
    return ellipsis(f"{group.entity} · {group.field}", 48)


def _rest(report: Report, budget: _Budget) -> str:
    if not report.rest:
        return ""
    n = sum(len(g.findings) for g in report.rest)
    listed, unlisted = report.rest[:LISTED_FIELDS], report.rest[LISTED_FIELDS:]
    blocks = "".join(
        f"<details class=\"rest-field\"><summary><code>{_t(g.entity)}</code> · "
        f"<code>{_t(g.field)}</code> <span class=\"pill sev sev-{_t(g.severity)}\">"
        f"{len(g.findings)}</span> <span class=\"muted\">{_t(', '.join(g.detectors))}</span>"
        f"</summary>{_finding_rows(g.findings, budget, g.entity)}</details>"
        for g in listed
    )
    if unlisted:
        blocks += (
            f"<p class=\"muted\">… and {len(unlisted):,} more fields with "
            f"{sum(len(g.findings) for g in unlisted):,} findings, not listed here to keep "
            "this page light; <code>audit check --format json</code> has them all.</p>"
        )
    return (
        f"<section id=\"rest\"><h2>{n:,} more finding{'s' if n != 1 else ''} on "
        f"{len(report.rest):,} other field{'s' if len(report.rest) != 1 else ''}</h2>"
        f"<p class=\"muted\">Listed without timelines; raise <code>--top</code> to draw them, "
        f"or run <code>audit timeline ENTITY</code>.</p>{blocks}</section>"
    )


def render_html(report: Report) -> str:
    """The whole page as a string."""
    colours = _colours(report)
    span = (
        f"{_when(report.first_ts)} to {_when(report.last_ts)}" if report.first_ts else "no events"
    )
    meta = (
        f"store {_t(report.source or '—')} · {report.events:,} events on "
        f"{report.entities:,} entities · {_t(span)} · generated {_t(_when(report.generated_at))}"
    )
    budget = _Budget(LISTED_FINDINGS)
    body = (
        _summary(report) + _shown(report, colours, budget) + _rest(report, budget)
        if report.findings
        else f"<section id=\"summary\"><h2>No findings</h2><p>{report.events:,} events checked; "
        "no detector fired.</p></section>"
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content={_a(CSP)}>"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>conflict-audit report: {len(report.findings)} findings</title>"
        f"<script>{ERROR_TRAP}</script><style>{CSS}</style></head><body>"
        f"<header><h1>Conflict audit</h1><p class=\"meta\">{meta}</p></header>"
        f"<main>{body}</main>"
        "<footer>Each timeline: one lane per writer, time across. Hover a mark for the full "
        "value, versions and trace id.</footer>"
        "<pre id=\"selftest\" hidden></pre>"
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def write_html(report: Report, path: str | Path) -> Path:
    """Write the page to ``path`` (UTF-8) and return it.

    Written beside it first and renamed, so a browser reloading the file (or a CI artefact
    upload) never sees half a page.
    """
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(render_html(report), encoding="utf-8")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path
