"""`audit report`: the findings as a summary and a timeline per finding, in the terminal or
as one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from frontends.cli.options import LOCK_WAIT_S, ConfigOption, DbOption, WaitOption

# frontends.report.model's defaults, repeated: importing it imports rich and the renderers, which
# every command would pay to define this one's options. tests/cli/test_startup.py keeps them
# equal.
DEFAULT_TOP = 20
DEFAULT_PER_FIELD = 5
TERMINAL_TOP = 5  # a terminal scrolls away; a page has a table of contents


def register(app: typer.Typer) -> None:
    @app.command()
    def report(
        db: DbOption = None,
        wait: WaitOption = LOCK_WAIT_S,
        config: ConfigOption = None,
        html: Annotated[
            Optional[Path],  # noqa: UP045 - typer reads the annotation at runtime
            typer.Option("--html", metavar="FILE", dir_okay=False,
                         help="Write a self-contained HTML report to this file."),
        ] = None,
        top: Annotated[
            Optional[int],  # noqa: UP045
            typer.Option(
                "--top", min=0, show_default=False, metavar="N",
                help=f"Entity/field groups drawn with timelines, worst first; the rest are "
                f"listed (default: {DEFAULT_TOP} with --html, {TERMINAL_TOP} in the terminal).",
            ),
        ] = None,
        per_field: Annotated[
            int,
            typer.Option("--per-field", min=0, metavar="N",
                         help="Timelines drawn per entity/field group."),
        ] = DEFAULT_PER_FIELD,
        detector: Annotated[
            Optional[list[str]],  # noqa: UP045
            typer.Option("--detector", metavar="NAME", help="Only this detector (repeatable)."),
        ] = None,
        entity: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option("--entity", metavar="ID", help="Only this entity."),
        ] = None,
        since: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option("--since", metavar="TS",
                         help="Only findings from this time on (RFC 3339)."),
        ] = None,
        until: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option("--until", metavar="TS",
                         help="Only findings up to this time (RFC 3339)."),
        ] = None,
    ) -> int:
        """Show the findings: counts per detector and writer pair, the contested fields, and
        for each finding a timeline of who wrote what, when, having seen which version."""
        from audit.config import load_config
        from audit.errors import AuditError
        from collectors.store import open_store, resolve_db
        from frontends.cli.progress import ProgressBar
        from frontends.report import render_terminal, write_html
        from frontends.report import report as make_report

        if html is not None and not html.resolve().parent.is_dir():
            raise AuditError(f"cannot write {html}: directory {html.parent} does not exist")
        settings = load_config(config)
        if top is None:
            top = DEFAULT_TOP if html is not None else TERMINAL_TOP
        con = open_store(db, read_only=True, wait_s=wait)
        try:
            with ProgressBar("checking") as advance:
                result = make_report(
                    con, config=settings, detectors=detector, entity=entity, since=since,
                    until=until, top=top, per_field=per_field, source=resolve_db(db).name,
                    progress=advance,
                )
        finally:
            con.close()
        if html is None:
            render_terminal(result)
            return 0
        write_html(result, html)
        drawn = sum(len(g.swimlanes) for g in result.shown)
        print(f"wrote {html}: {len(result.findings)} findings, {drawn} timelines")
        return 0
