"""The demo on a terminal: progress while it runs, then the story in five parts.

1. what the audit found in the unsafe run, against the ground truth;
2. an example message per detector;
3. the timeline of the block that suffered most;
4. who writes what;
5. the fix side by side, and the commands to explore further.

Everything fits a 100-column terminal and reads in 80.
"""

from __future__ import annotations

import shlex
from datetime import datetime
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.padding import Padding
from rich.progress import BarColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar
from rich.table import Table
from rich.text import Text

from frontends.demo.pipeline import SERIOUS, DemoResult, Progress, RunResult
from frontends.demo.truth import DETECTORS
from frontends.report.values import NOT_READ

WIDTH = 100
TIMELINE_ROWS = 14
MARKS = {
    "lost_update": "L",
    "stale_overwrite": "S",
    "version_conflict": "F",
    "priority_inversion": "P",
    "oscillation": "O",
    "chain_break": "C",
}
TITLES = {
    "unsafe": "unsafe: whole-document saves, last write wins",
    "safe": "safe: compare-and-swap + writer priorities",
}


def console() -> Console:
    c = Console(highlight=False)
    if c.width > WIDTH:
        c = Console(highlight=False, width=WIDTH)
    return c


class TerminalProgress(Progress):
    """One bar per run while the writers race, then a line per pipeline step."""

    def __init__(self, out: Console) -> None:
        self.out = out
        self.bar: Bar | None = None
        self.task: TaskID | None = None

    def phase(self, mode: str, name: str) -> None:
        self._stop_bar()
        if name == "simulate":
            self.out.print(f"[bold]{mode} run[/] — {TITLES[mode]}")
        if not self.out.is_terminal:
            return
        label = {"simulate": "writers racing", "ingest": "ingesting the spool",
                 "check": "running the detectors", "report": "writing the HTML report"}[name]
        self.bar = Bar(
            TextColumn(f"  {label}"), BarColumn(bar_width=30),
            TextColumn("{task.fields[saves]}"), TimeElapsedColumn(),
            console=self.out, transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task(name, total=1.0 if name == "simulate" else None, saves="")

    def tick(self, mode: str, fraction: float, saves: int) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=fraction, saves=f"{saves} saves")

    def done(self, run: RunResult) -> None:
        self._stop_bar()
        sim = run.simulation
        self.out.print(
            f"  {sim.stats['writes']} writes in {sim.seconds:.1f} s, {run.ingested} events "
            f"spooled and ingested → [bold]{escape(str(run.db))}[/]"
        )

    def close(self) -> None:
        """Take the bar off the terminal (also when the run failed or was interrupted)."""
        self._stop_bar()

    def _stop_bar(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


# --- the story -----------------------------------------------------------------------------


def render(result: DemoResult, out: Console) -> None:
    unsafe, safe = result.run("unsafe"), result.run("safe")
    first = unsafe or safe
    assert first is not None
    out.print()
    out.rule(f"[bold]1. What the audit found ({first.mode} run), against the ground truth",
             align="left")
    out.print(truth_table(first))
    out.print(Padding(truth_notes(first), (0, 0, 0, 2)))
    if first.findings:
        out.print()
        out.rule("[bold]2. The findings, one example per detector", align="left")
        out.print(examples_table(first))
    if first.worst_entity:
        out.print()
        out.rule(f"[bold]3. Timeline of {first.worst_entity}, the block that suffered most",
                 align="left")
        out.print(timeline_table(first))
    out.print()
    out.rule("[bold]4. Who writes what (list indexes folded to *)", align="left")
    out.print(owners_table(first))
    if safe:
        out.print()
        out.rule("[bold]5. The fix: compare-and-swap with retry + writer priorities",
                 align="left")
        if unsafe:
            out.print(side_by_side(unsafe, safe))
        out.print(Padding(fix_notes(unsafe, safe), (0, 0, 0, 2)))
    out.print()
    out.rule("[bold]Explore", align="left")
    out.print(explore(result))
    out.print(verdict(result))


def truth_table(run: RunResult) -> Table:
    table = Table(box=None, padding=(0, 2, 0, 0), header_style="bold")
    table.add_column("detector", no_wrap=True)
    table.add_column("happened", justify="right")
    table.add_column("found", justify="right")
    table.add_column("correct", justify="right")
    table.add_column("false alarms", justify="right")
    table.add_column("missed", justify="right")
    table.add_column("recall", justify="right")
    for name in DETECTORS:
        s = run.scores[name]
        recall = "—" if s.recall is None else f"{s.recall:.0%}"
        ok = "green" if s.exact else "bold red"
        table.add_row(
            name, str(s.truth), str(s.found), str(s.true_positives),
            Text(str(len(s.false_positives)), style=ok), Text(str(len(s.missed)), style=ok),
            Text(recall, style=ok),
        )
    return table


def truth_notes(run: RunResult) -> Text:
    sim = run.simulation
    text = Text(
        "The ground truth is kept by the simulated store from the documents it saves, never "
        "from the events; a finding is correct when it names the same detector, block, field "
        "and writes.",
        style="dim",
    )
    clobbers = sim.truth.clobbers()
    lost = run.scores["lost_update"].truth
    if lost:
        text.append(
            f"\n{clobbers} of the {lost} lost updates were fields the writer never meant to "
            "touch: they rode along in its stale copy of the whole block."
        )
    hidden = sim.truth.hidden_by_forks()
    if hidden:
        on_fork = sum(1 for e1, _ in hidden if sim.truth.forked(e1.entity, e1.version))
        text.append(
            f"\nIn all, {len(sim.truth.unseen_overwrites())} writes replaced a value their "
            f"writer had never seen. The other {len(hidden)} hid behind a forked version: "
            "the writer had seen one write that produced version N and overwrote another "
            "that produced the same N, which no rule on version numbers can tell apart; "
            + ("each" if on_fork == len(hidden) else f"{on_fork} of them")
            + " sits on a fork the audit reports (version_conflict)."
        )
    return text


def examples_table(run: RunResult) -> Table:
    table = Table(box=None, padding=(0, 2, 0, 0), header_style="bold", expand=True)
    table.add_column("detector", no_wrap=True)
    table.add_column("found", justify="right")
    table.add_column("for example", ratio=1, overflow="fold")
    for name in DETECTORS:
        hits = [f for f in run.findings if f.detector == name]
        if not hits:
            continue
        example = hits[0]
        body = Text(example.message)
        body.append(f"\n{example.entity} · {example.field}", style="dim")
        table.add_row(Text(name, style=_style(name)), str(len(hits)), body)
    return table


def timeline_table(run: RunResult) -> Group:
    rows = run.timeline
    start, end = _busiest_window(rows, TIMELINE_ROWS)
    origin = _seconds(rows[0]["ts"]) if rows else 0.0
    table = Table(box=None, padding=(0, 1, 0, 0), header_style="bold", expand=True)
    table.add_column("time", no_wrap=True, justify="right")
    table.add_column("field", no_wrap=True)
    table.add_column("writer", no_wrap=True)
    table.add_column("version", no_wrap=True)
    table.add_column("old → new", no_wrap=True, overflow="ellipsis", ratio=1)
    table.add_column("found", no_wrap=True)
    for row in rows[start:end]:
        versions = f"{_v(row['base_version'])}→{_v(row['version'])}"
        # A blind write's writer did not read the value: its old value is unknown.
        change = Text(NOT_READ if row["blind"] else _value(row["old"], row["has_old"]))
        change.append(" → ")
        change.append(_value(row["new"], row["has_new"]))
        marks = Text("".join(MARKS.get(d, "?") for d in row["findings"]), style="bold red")
        when = f"+{_seconds(row['ts']) - origin:.3f}"
        table.add_row(when, row["field"], row["writer"], versions, change, marks)
    legend = Text(
        f"transitions {start + 1}–{end} of {len(rows)} in commit order, time in seconds "
        "since the first; found: "
        + ", ".join(f"{mark} {name}" for name, mark in MARKS.items()),
        style="dim",
    )
    return Group(table, Padding(legend, (0, 0, 0, 2)))


def owners_table(run: RunResult) -> Table:
    table = Table(box=None, padding=(0, 2, 0, 0), header_style="bold", expand=True)
    table.add_column("field", no_wrap=True)
    table.add_column("writers (writes)", ratio=1, overflow="fold")
    table.add_column("blocks", justify="right")
    for row in run.owners:
        writers = ", ".join(f"{w['writer']} ({w['writes']})" for w in row["writers"])
        style = "bold" if row["contested"] else "dim"
        table.add_row(Text(row["field"], style=style), Text(writers), str(row["entities"]))
    return table


def side_by_side(unsafe: RunResult, safe: RunResult) -> Table:
    table = Table(box=None, padding=(0, 2, 0, 0), header_style="bold")
    table.add_column("")
    table.add_column("unsafe", justify="right")
    table.add_column("safe", justify="right")
    for name in DETECTORS:
        before, after = unsafe.found(name), safe.found(name)
        style = "bold green" if before and not after else ""
        table.add_row(
            Text(name, style=_style(name)), _found(unsafe, name), _found(safe, name, style)
        )
    us, ss = unsafe.simulation.stats, safe.simulation.stats
    table.add_row("", "", "")
    table.add_row("writes made", str(us["writes"]), str(ss["writes"]))
    table.add_row("conflicts refused and retried", "—", str(ss["retries"]))
    table.add_row("field changes refused by rule", "—", str(ss["refused_fields"]))
    table.add_row("audit matches ground truth", _yes(unsafe.exact), _yes(safe.exact))
    return table


def fix_notes(unsafe: RunResult | None, safe: RunResult) -> Text:
    text = Text()
    if unsafe is not None:
        text.append(
            f"Same seed, same plan of writes: data-losing findings (severity error) "
            f"{unsafe.errors} → {safe.errors}.\n",
            style="bold",
        )
    text.append(
        "Every save names the version it was read at and the store refuses it if the block "
        "moved on (audit.compare_and_swap); the writer reads again, re-applies only its own "
        "change and retries. Each field remembers who set it, from data of what age: a less "
        "authoritative writer (user > workflow > instantiation > polling_sync) may not "
        "replace it within the priority window (audit.merge_by_priority), nor may older "
        "data."
    )
    refused = safe.simulation.refused
    if refused:
        top = ", ".join(f"{writer} → {field} {n}" for (writer, field), n in
                        refused.most_common(3))
        text.append(
            f"\nRefused field changes ({top}) are the price of the priority rule: a real service "
            "would surface them (a 409, a conflict dialog) rather than drop them."
        )
    osc = safe.found("oscillation")
    if osc:
        text.append(
            f"\n{osc} oscillation(s) remain: the value really went back and forth (e.g. a "
            "file embedded twice, by the workflow and by the instantiation). Locking stops "
            "lost writes, not genuine flips, and the audit still shows them."
        )
    return text


def explore(result: DemoResult) -> Text:
    text = Text()
    for run in result.runs:
        db = shlex.quote(str(run.db))
        text.append(f"  # the {run.mode} run\n", style="dim")
        text.append(f"  audit check --db {db}\n")
        if run.worst_entity:
            text.append(f"  audit timeline {run.worst_entity} --db {db}\n")
        text.append(f"  audit owners --db {db}\n")
        if run.html is not None:
            text.append(f"  audit report --db {db} --html {shlex.quote(str(run.html))}")
            text.append("   (already written)\n", style="dim")
        else:
            text.append(f"  audit report --db {db}\n")
    return text


def verdict(result: DemoResult) -> Text:
    exact = all(r.exact for r in result.runs)
    text = Text()
    if exact:
        text.append("Every finding was real and every real anomaly was found ", style="bold")
        text.append("(false alarms 0, missed 0). ", style="bold green")
    else:
        text.append("The audit disagreed with the ground truth: see the red counts above.",
                    style="bold red")
    text.append(f"Demo finished in {result.seconds:.1f} s.")
    return text


# --- small formatting helpers ----------------------------------------------------------------


def _style(detector: str) -> str:
    return "red" if detector in SERIOUS else "yellow"


def _found(run: RunResult, detector: str, style: str = "") -> Text:
    """The count found, with the true count beside it when they differ."""
    s = run.scores[detector]
    if s.exact:
        return Text(str(s.found), style=style)
    return Text(f"{s.found} (real {s.truth})", style="bold red")


def _yes(flag: bool) -> Text:
    return Text("yes", style="green") if flag else Text("NO", style="bold red")


def _v(value: Any) -> str:
    return "?" if value is None else str(value)


def _value(value: Any, present: bool, limit: int = 24) -> str:
    if not present:
        return "(absent)"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _seconds(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _busiest_window(rows: list[dict[str, Any]], size: int) -> tuple[int, int]:
    """The run of ``size`` consecutive transitions with the most data-losing marks."""
    if len(rows) <= size:
        return 0, len(rows)
    weight = [
        sum(2 if d in SERIOUS else 1 for d in row["findings"]) for row in rows
    ]
    best, best_at = -1, 0
    for start in range(len(rows) - size + 1):
        total = sum(weight[start : start + size])
        if total > best:
            best, best_at = total, start
    return best_at, best_at + size
