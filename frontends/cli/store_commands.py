"""`audit ingest`, `audit stats`, `audit schema`: getting events in and seeing what is there."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer

from frontends.cli.options import LOCK_WAIT_S, CountsJsonOption, DbOption, WaitOption
from frontends.printable import printable, printable_text


def register(app: typer.Typer) -> None:
    @app.command()
    def ingest(
        paths: Annotated[
            list[str],
            typer.Argument(help="JSONL files, folders of them (recursively) or - for stdin."),
        ],
        db: DbOption = None,
        wait: WaitOption = LOCK_WAIT_S,
        as_json: CountsJsonOption = False,
        tail_grace: Annotated[
            float | None,
            typer.Option(
                help="Seconds a file must stay unchanged before its unfinished last line "
                "is rejected rather than left for its writer [default: 600].",
                show_default=False,
            ),
        ] = None,
    ) -> None:
        """Load field-transition events; re-running is a no-op, grown files load new lines."""
        from collectors.store import open_store, resolve_db
        from collectors.stores import ingest as run_ingest

        started = time.perf_counter()
        con = open_store(db, wait_s=wait)
        try:
            grace = {} if tail_grace is None else {"tail_grace_s": tail_grace}
            summary = run_ingest(con, paths, progress=True, **grace)
        finally:
            con.close()
        elapsed = time.perf_counter() - started
        if as_json:
            print(json.dumps({**summary.as_dict(), "seconds": round(elapsed, 3)}))
            return
        unchanged = f" ({summary.unchanged_files} unchanged)" if summary.unchanged_files else ""
        skipped, writing = summary.skipped_entries, summary.writing_files
        not_files = f"; {skipped:,} folder entries skipped (not files)" if skipped else ""
        later = f"; {writing:,} spool file(s) still being written" if writing else ""
        print(
            f"{summary.files} file(s){unchanged} into {resolve_db(db)} in {elapsed:.2f} s: "
            f"{summary.ingested:,} ingested, {summary.duplicates:,} duplicates skipped, "
            f"{summary.skipped:,} other log lines skipped, {summary.rejected:,} rejected"
            f"{not_files}{later}"
        )
        if writing:
            print("  (read by a later ingest, once their writers seal them: by size, by age "
                  "(audit serve: 10 s; a service's spool: 60 s by default) or when they stop)",
                  file=sys.stderr)
        for reason, count in summary.reasons.most_common(5):
            print(f"  rejected {count:,}× {printable(reason)}", file=sys.stderr)
        if summary.rejected:
            print(
                "  (see `audit stats`; raw lines are in the rejected_events table)", file=sys.stderr
            )

    @app.command()
    def stats(
        db: DbOption = None,
        wait: WaitOption = LOCK_WAIT_S,
        as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    ) -> None:
        """What the store holds: events by writer and entity type, time range, rejects."""
        from collectors.stats import store_stats
        from collectors.store import open_store

        con = open_store(db, read_only=True, wait_s=wait)
        try:
            s = store_stats(con)
        finally:
            con.close()
        if as_json:
            print(json.dumps(s, default=str))
            return
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        out = Console()
        head = Text()
        head.append(str(s["events"]), style="bold")
        # an empty store has no time range to give (first_ts and last_ts are None)
        span = f" from {s['first_ts']} to {s['last_ts']}" if s["events"] else ""
        head.append(printable(
            f" events on {s['entities']} entities{span}; {s['files']} file(s) ingested; "
        ))
        head.append(str(s["rejected"]), style="bold")
        head.append(" rejected lines")
        out.print(head)
        for title, key, label in (
            ("Events by writer", "by_writer", "writer"),
            ("Events by entity type", "by_entity_type", "entity type"),
            ("Rejected lines by reason", "rejects_by_reason", "reason"),
        ):
            if not s[key]:
                continue
            table = Table(title=title, title_justify="left")
            table.add_column(label, overflow="fold")
            table.add_column("count", justify="right")
            for name, count in s[key]:
                table.add_row(printable_text(name), str(count))
            out.print(table)

    @app.command()
    def schema() -> None:
        """Print the JSON Schema of one event line (for emitters in other languages)."""
        from audit.event import json_schema_text

        print(json_schema_text())
