"""`audit spool seal DIR`: make the events a dead writer left in the spool ingestible."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from audit.errors import AuditError

spool_app = typer.Typer(
    name="spool",
    help="The spool folder that services (and `audit serve`) write.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(spool_app)


@spool_app.command()
def seal(
    directory: Annotated[Path, typer.Argument(help="The spool folder (searched recursively).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Seal the .part files of writers that are gone, up to their last complete line.

    `audit ingest DIR` and `audit alert --watch DIR` do the same before they read; files of
    live writers are left alone."""
    from collectors.spool import held_parts, seal_abandoned

    if not directory.is_dir():
        raise AuditError(f"no such spool folder: {directory}")
    sealed = seal_abandoned(directory)
    live = held_parts(directory)
    if as_json:
        print(json.dumps({"sealed": [str(p) for p in sealed], "live": [str(p) for p in live]}))
        return
    for path in sealed:
        print(f"sealed {path}")
    print(f"{len(sealed)} file(s) sealed; {len(live)} still being written by live writers")
