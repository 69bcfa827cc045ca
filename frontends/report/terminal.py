"""The report in a terminal: the HTML page's summary as rich tables, and per finding its
explanation, what its detector measured on one line, and a compact text timeline (one row
per write, witnesses marked, the overwritten value struck through).

Readable at 80 columns. User data is only ever passed to rich as ``Text``, never as markup,
so a value like ``[bold]`` prints as itself, and always through ``printable``, so a control
character in it is shown as an escape instead of acting on the terminal.
"""

from __future__ import annotations

from datetime import datetime

from rich import box
from rich.console import Console, Group
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from frontends.printable import printable, printable_text
from frontends.report.facts import describe
from frontends.report.model import FieldFindings, Report, Swimlane
from frontends.report.svg import clock, duration
from frontends.report.values import label
from frontends.severity import tally

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "blue"}
MAX_REST_FIELDS = 30  # beyond this the terminal says how many more, the HTML lists them all


def _when(moment: datetime | str | None) -> str:
    if isinstance(moment, datetime):
        return moment.strftime("%Y-%m-%d %H:%M:%SZ")
    return printable(moment) if moment else "—"


def _table(title: str, *columns: tuple[str, dict]) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                  pad_edge=False, expand=False)
    for name, opts in columns:
        table.add_column(name, **opts)
    return table


def _summary(report: Report) -> list:
    by_detector = _table(
        "Findings per detector", ("detector", {}), ("findings", {"justify": "right"}),
        ("error", {"justify": "right", "style": "red"}),
        ("warning", {"justify": "right", "style": "yellow"}),
        ("info", {"justify": "right", "style": "blue"}),
    )
    for name, sevs in report.by_detector:
        by_detector.add_row(
            printable_text(name), str(sevs.total()),
            *(str(sevs.get(s, 0) or "") for s in ("error", "warning", "info")),
        )
    pairs = _table("Who overwrote whom", ("writers", {"overflow": "fold"}),
                   ("findings", {"justify": "right"}))
    for pair, n in report.by_writer_pair:
        pairs.add_row(printable_text(pair), str(n))
    contested = _table(
        "Contested fields", ("field", {"overflow": "fold", "ratio": 2}),
        ("findings", {"justify": "right"}), ("entities", {"justify": "right"}),
        ("writers", {"overflow": "fold", "ratio": 3}),
    )
    for c in report.contested:
        contested.add_row(printable_text(c.field), str(c.findings), str(c.entities),
                          printable_text(", ".join(c.writers)))
    return [by_detector, pairs, contested]


def timeline_table(lane: Swimlane, width: int = 80) -> Table:
    """One row per write in commit order: witness number, clock, gap, writer, version, value.

    The fixed columns take ~52 characters; the value gets what ``width`` leaves.
    """
    value_chars = max(12, width - 56)
    table = Table(box=None, pad_edge=False, show_header=True, header_style="dim",
                  padding=(0, 1), expand=False)
    table.add_column("", width=3, no_wrap=True)
    table.add_column("time (UTC)", min_width=12, no_wrap=True)
    table.add_column("gap", justify="right", min_width=8, no_wrap=True)
    table.add_column("writer", max_width=14, overflow="ellipsis", no_wrap=True)
    table.add_column("version", min_width=9, no_wrap=True)
    table.add_column("value", overflow="ellipsis", no_wrap=True, max_width=value_chars)
    previous = None
    for i, w in enumerate(lane.writes):
        if lane.hidden.get(i):
            table.add_row("", Text(f"⋯ {lane.hidden[i]} more", style="dim"), "", "", "", "")
        n = lane.witness_number(w.event_id)
        gap = "" if previous is None else duration(w.ts_us - previous)
        previous = w.ts_us
        version = "" if w.version is None else f"v{w.version}"
        if w.base_version is not None:
            version += f" saw v{w.base_version}"
        value = printable_text(label(w.new, value_chars))
        if w.event_id in lane.overwritten:
            value.stylize("strike red")
        elif n:
            value.stylize("bold")
        row_style = None if n else "dim"
        table.add_row(
            Text(f"W{n}", style="bold") if n else "", clock(w.ts_us), gap, printable_text(w.writer),
            version, value, style=row_style,
        )
    if lane.hidden.get(len(lane.writes)):
        table.add_row("", Text(f"⋯ {lane.hidden[len(lane.writes)]} more", style="dim"),
                      "", "", "", "")
    return table


def _finding(lane: Swimlane, width: int) -> Group:
    """Each finding of the story (detector, severity, explanation, facts), then its timeline."""
    parts = []
    for f in lane.findings:
        head = Text()
        head.append(f.detector, style="bold")
        head.append(" · ")
        head.append(f.severity, style=SEVERITY_STYLE.get(f.severity, ""))
        facts = describe(f).line()
        parts += [head, Padding(printable_text(f.message), (0, 0, 0, 2))]
        if facts:
            parts.append(Padding(printable_text(facts, style="dim"), (0, 0, 0, 2)))
    return Group(*parts, Padding(timeline_table(lane, width - 2), (0, 0, 1, 2)))


def _group_rule(group: FieldFindings) -> Rule:
    n = len(group.findings)
    title = Text()
    title.append(printable(f"{group.entity} · {group.field}"), style="bold")
    if group.entity_type:
        title.append(printable(f" ({group.entity_type})"), style="dim")
    title.append(f"  {n} finding{'s' if n != 1 else ''}")
    return Rule(title, align="left")


def render_terminal(report: Report, console: Console | None = None) -> None:
    """Print the report to ``console`` (default: stdout)."""
    console = console or Console()
    header = Text()
    header.append("Conflict audit", style="bold")
    header.append(printable(f"  {report.source or ''}  "), style="dim")
    header.append(f"{report.events:,} events on {report.entities:,} entities")
    if report.first_ts:
        header.append(f", {_when(report.first_ts)} to {_when(report.last_ts)}", style="dim")
    console.print(header)
    if not report.findings:
        console.print(Text("No findings: no detector fired.", style="green"))
        return
    total = len(report.findings)
    console.print(printable_text(f"{total} finding{'s' if total != 1 else ''}: "
                                 f"{tally(report.by_severity)}", style="bold"))
    console.print()
    for table in _summary(report):
        console.print(table)
    for group in report.shown:
        console.print(_group_rule(group))
        for lane in group.swimlanes:
            console.print(_finding(lane, console.width))
        more = group.undrawn
        if more:
            console.print(Padding(Text(
                f"… {len(more)} more finding{'s' if len(more) != 1 else ''} on this field: "
                + ", ".join(sorted({f.detector for f in more})), style="dim"), (0, 0, 1, 2)))
    if report.rest:
        n = sum(len(g.findings) for g in report.rest)
        rest = _table(
            f"{n} more finding{'s' if n != 1 else ''} on {len(report.rest)} other "
            f"field{'s' if len(report.rest) != 1 else ''}",
            ("entity · field", {"overflow": "fold", "ratio": 3}),
            ("findings", {"justify": "right"}),
            ("detectors", {"overflow": "fold", "ratio": 2}),
        )
        for g in report.rest[:MAX_REST_FIELDS]:
            rest.add_row(printable_text(f"{g.entity} · {g.field}"), str(len(g.findings)),
                         printable_text(", ".join(g.detectors)))
        console.print(rest)
        if len(report.rest) > MAX_REST_FIELDS:
            console.print(Text(
                f"… and {len(report.rest) - MAX_REST_FIELDS} more fields; "
                "`audit report --html FILE` lists every finding.", style="dim"))
