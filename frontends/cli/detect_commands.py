"""`audit check`, `timeline`, `replay`, `owners`: the detectors and the history views.

A thin layer over queries.runner and queries.history; readers open the store read-only.
`audit check` exits 0 when there is no finding, 1 when there are findings, 2 on an error.
"""

from __future__ import annotations

import csv
import json
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from audit.errors import AuditError
from frontends.cli.options import LOCK_WAIT_S, ConfigOption, DbOption, WaitOption
from frontends.cli.progress import ProgressBar
from frontends.printable import printable, printable_text

# rich (~20 ms to import) is imported by the functions that print tables, not here: JSON and
# CSV output and the other commands do without it.
if TYPE_CHECKING:
    from rich.console import Console


class CheckFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class ViewFormat(StrEnum):
    table = "table"
    json = "json"


ViewFormatOption = Annotated[ViewFormat, typer.Option("--format", "-f", help="table or json.")]


_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
# `facts` last, so that columns keep their places for scripts that read them by position.
CSV_COLUMNS = ("severity", "detector", "entity", "entity_type", "field", "writers", "event_ids",
               "first_ts", "last_ts", "fingerprint", "message", "facts")


def _console() -> Console:
    from rich.console import Console

    # Soft-wrap off and no highlighting: what is printed is what the table says.
    return Console(highlight=False)


def _open(db, wait: float):
    from collectors.store import open_store

    return open_store(db, read_only=True, wait_s=wait)


def _require_entity(con, entity: str) -> None:
    """timeline and replay name an unknown entity rather than print an empty view."""
    from queries.history import entity_exists

    if not entity_exists(con, entity):
        raise AuditError(f"no events of entity {entity!r} in the store")


def _note_unknown_entity(con, entity: str) -> None:
    """An entity with no events has no findings either: still exit 0 with nothing found
    (docs/contract.md §4), but say on stderr that nothing was checked, so that a mistyped
    id does not pass for a clean one."""
    from queries.history import entity_exists

    if not entity_exists(con, entity):
        print(printable(f"note: no events of entity {entity!r} in the store"), file=sys.stderr)


def _json_text(value: Any) -> str:
    """JSON as `--format json` writes it: the data exact, not escaped to ASCII."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _json_out(value: Any) -> None:
    sys.stdout.write(_json_text(value) + "\n")


def register(app: typer.Typer) -> None:
    @app.command()
    def check(
        detector: Annotated[
            Optional[list[str]],  # noqa: UP045 - typer reads the annotation at runtime
            typer.Option("--detector", "-d", help="Run only this detector (repeatable)."),
        ] = None,
        entity: Annotated[
            Optional[str], typer.Option(help="Only this entity.")  # noqa: UP045
        ] = None,
        since: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option(help="Only findings with witnesses at or after this RFC 3339 time."),
        ] = None,
        until: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option(help="Only findings with witnesses at or before this RFC 3339 time."),
        ] = None,
        fmt: Annotated[
            CheckFormat, typer.Option("--format", "-f", help="table, json or csv.")
        ] = CheckFormat.table,
        config: ConfigOption = None,
        db: DbOption = None,
        wait: WaitOption = LOCK_WAIT_S,
    ) -> int:
        """Run the detectors; exit 0 when clean, 1 when there are findings, 2 on an error."""
        from audit.config import load_config
        from queries.runner import check as run_check
        from queries.runner import resolve_detectors
        from queries.values import parse_timestamp

        # Validate every option before touching the store: bad input is one line, exit 2.
        names = resolve_detectors(detector)
        since_ts = parse_timestamp(since, "--since") if since else None
        until_ts = parse_timestamp(until, "--until") if until else None
        cfg = load_config(config)
        con = _open(db, wait)
        try:
            with ProgressBar("checking") as advance:
                findings = run_check(con, detectors=names, entity=entity, since=since_ts,
                                     until=until_ts, config=cfg, progress=advance)
            if entity is not None and not findings:
                _note_unknown_entity(con, entity)
        finally:
            con.close()
        if fmt is CheckFormat.json:
            _json_out([f.to_dict() for f in findings])
        elif fmt is CheckFormat.csv:
            out = csv.writer(sys.stdout, lineterminator="\n")
            out.writerow(CSV_COLUMNS)
            for f in findings:
                d = f.to_dict()
                d["writers"] = ";".join(f.writers)
                d["event_ids"] = ";".join(f.event_ids)
                d["facts"] = _json_text(f.facts)
                out.writerow([d[c] if d[c] is not None else "" for c in CSV_COLUMNS])
        else:
            _print_findings(findings)
        return 1 if findings else 0

    @app.command()
    def timeline(
        entity: Annotated[str, typer.Argument(help="The entity id, e.g. block-A.")],
        field: Annotated[
            Optional[str], typer.Option(help="Only this field.")  # noqa: UP045
        ] = None,
        fmt: ViewFormatOption = ViewFormat.table,
        config: ConfigOption = None,
        db: DbOption = None,
        wait: WaitOption = LOCK_WAIT_S,
    ) -> None:
        """The entity's transitions in commit order, marking the findings each is part of."""
        from audit.config import load_config
        from queries.history import timeline as run_timeline

        cfg = load_config(config)
        con = _open(db, wait)
        try:
            _require_entity(con, entity)
            rows = run_timeline(con, entity, field, config=cfg)
        finally:
            con.close()
        if fmt is ViewFormat.json:
            _json_out(rows)
            return
        if not rows:
            print(printable(f"{entity} has no transitions of field {field!r}"))
            return
        _print_timeline(entity, rows)

    @app.command()
    def replay(
        entity: Annotated[str, typer.Argument(help="The entity id, e.g. block-A.")],
        at: Annotated[str, typer.Option("--at", help="RFC 3339 time to replay up to.")],
        fmt: ViewFormatOption = ViewFormat.table,
        db: DbOption = None,
        wait: WaitOption = LOCK_WAIT_S,
    ) -> None:
        """The entity's field values as of a time, rebuilt from its transitions."""
        from queries.history import replay as run_replay
        from queries.values import parse_timestamp

        at_ts = parse_timestamp(at, "--at")
        con = _open(db, wait)
        try:
            _require_entity(con, entity)
            state = run_replay(con, entity, at_ts)
        finally:
            con.close()
        if fmt is ViewFormat.json:
            _json_out(state)
            return
        if not state:
            print(printable(f"{entity} had no field values at {at}"))
            return
        from rich.table import Table

        from queries.explain import show

        table = Table(title=printable_text(f"{entity} as of {at}"), title_justify="left")
        table.add_column("field", overflow="fold")
        table.add_column("value", overflow="fold")
        for name, value in state.items():
            table.add_row(printable_text(name), printable_text(show(value)))
        _console().print(table)

    @app.command()
    def owners(
        fmt: ViewFormatOption = ViewFormat.table,
        db: DbOption = None,
        wait: WaitOption = LOCK_WAIT_S,
    ) -> None:
        """Which writers write which fields (list indexes folded to *), contested first."""
        from queries.history import owners as run_owners

        con = _open(db, wait)
        try:
            rows = run_owners(con)
        finally:
            con.close()
        if fmt is ViewFormat.json:
            _json_out(rows)
            return
        if not rows:
            print("the store has no events")
            return
        from rich.table import Table

        table = Table(title="field owners (contested first)", title_justify="left")
        table.add_column("field", overflow="fold", ratio=2)
        table.add_column("writers (writes)", overflow="fold", ratio=3)
        table.add_column("writes", justify="right")
        table.add_column("entities", justify="right")
        for row in rows:
            writers = ", ".join(f"{w['writer']} ({w['writes']})" for w in row["writers"])
            name = printable_text(row["field"], style="bold" if row["contested"] else "")
            table.add_row(name, printable_text(writers), str(row["writes"]), str(row["entities"]))
        _console().print(table)


def _print_findings(findings) -> None:
    from rich.table import Table
    from rich.text import Text

    from frontends.report.facts import describe
    from frontends.severity import by_severity, tally

    console = _console()
    if not findings:
        console.print("no findings")
        return
    table = Table(show_lines=True, expand=True)
    table.add_column("finding", ratio=1, overflow="fold")
    table.add_column("what happened", ratio=3, overflow="fold")
    for f in findings:
        head = Text()
        head.append(f.severity.upper(), style=_SEVERITY_STYLE.get(f.severity, ""))
        head.append(f"\n{f.detector}\n", style="bold")
        head.append(f"{printable(f.entity)}\n{printable(f.field)}")
        body = printable_text(f.message)
        facts = describe(f).line()
        if facts:
            body.append("\n" + printable(facts), style="dim")
        span = f"{f.first_ts}" + (f" … {f.last_ts}" if f.last_ts != f.first_ts else "")
        body.append("\n" + printable(span), style="dim")
        table.add_row(head, body)
    console.print(table)
    # Counted by each finding's own severity: one detector may give several.
    console.print(printable_text(f"{len(findings)} finding{'s' if len(findings) != 1 else ''}: "
                                 f"{tally(by_severity(findings))}"))


def _snapshot(row: dict) -> str | None:
    """The snapshot file an imported transition came from (``attrs.snapshot``), if any."""
    attrs = row.get("attrs")
    snapshot = attrs.get("snapshot") if isinstance(attrs, dict) else None
    return snapshot if isinstance(snapshot, str) and snapshot else None


def _print_timeline(entity: str, rows: list[dict]) -> None:
    from pathlib import PurePath

    from rich.table import Table
    from rich.text import Text

    from frontends.report.values import NOT_READ
    from queries.explain import show

    title = printable_text(f"{entity}: transitions in commit order")
    table = Table(title=title, title_justify="left")
    table.add_column("when", no_wrap=True)
    table.add_column("field", overflow="fold", ratio=2)
    table.add_column("old → new", overflow="fold", ratio=3)
    table.add_column("writer", overflow="fold", ratio=2)
    table.add_column("findings", overflow="fold", ratio=2)
    for row in rows:
        date, _, time = printable(row["ts"]).partition("T")
        when = f"{date}\n{time}"
        if row["version"] is not None:
            when += f"\nv{row['version']}"
            if row["base_version"] is not None:
                when += f" (read v{row['base_version']})"
        # A blind write's writer did not read the value: its old value is unknown, not absent.
        change = printable_text(NOT_READ if row["blind"] else show(row["old"], row["has_old"]))
        change.append(" → ")
        change.append(printable(show(row["new"], row["has_new"])))
        writer = printable_text(row["writer"] + (f" ({row['actor']})" if row["actor"] else ""))
        snapshot = _snapshot(row)
        if snapshot:
            writer.append("\n" + printable(PurePath(snapshot).name), style="dim")
        marks = Text("\n".join(row["findings"]), style="bold red" if row["findings"] else "")
        table.add_row(Text(when), printable_text(row["field"]), change, writer, marks)
    console = _console()
    console.print(table)
    folders = sorted({str(PurePath(s).parent) for s in map(_snapshot, rows) if s})
    if folders:
        console.print(printable_text("under the writer: the snapshot file each change was "
                                     f"imported from, in {', '.join(folders)}", style="dim"))
