"""`audit import snapshots`: saved documents into transition events (docs/contract.md §6).

A thin layer over collectors.snapshots: it parses the options, shows progress on a long
import and prints what was stored.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Optional

import typer

from audit.errors import AuditError
from frontends.cli.options import (
    LOCK_WAIT_S,
    CountsJsonOption,
    DbOption,
    ListKeyOption,
    WaitOption,
    list_keys,
)
from frontends.cli.progress import ProgressBar

_PROGRESS_FROM = 200  # documents: fewer are done before a bar would be worth drawing


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        name="import", help="Turn histories that are not events yet into events.",
        no_args_is_help=True,
    )
    app.add_typer(group)

    @group.command()
    def snapshots(
        paths: Annotated[
            list[str],
            typer.Argument(help="JSON documents: files, folders of them, JSON Lines files."),
        ],
        id_key: Annotated[str, typer.Option(help="The key holding the entity id.")] = "id",
        entity_type: Annotated[
            Optional[str], typer.Option(help="The documents' entity type.")  # noqa: UP045
        ] = None,
        split: Annotated[
            list[str],
            typer.Option(
                metavar="LISTPATH:KEY",
                help="Make each element of a list an entity of its own, ID/ELEMENT_KEY "
                "(repeatable).",
            ),
        ] = [],  # noqa: B006 - typer reads the default, never mutates it
        writer: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option(help="The writer of every document (default: unknown)."),
        ] = None,
        writer_key: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option(help="The key holding each document's writer (dotted for nested)."),
        ] = None,
        ts_key: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option(
                help="The key holding when each document was saved; else a timestamp in the "
                "file name, else the order given."
            ),
        ] = None,
        exclude: Annotated[
            list[str],
            typer.Option(
                metavar="PATTERN",
                help="Leave these paths out, e.g. 'nodes[*].position' (repeatable; "
                "docs/diff.md).",
            ),
        ] = [],  # noqa: B006
        list_key: ListKeyOption = [],  # noqa: B006 - typer reads it, never mutates it
        db: DbOption = None,
        wait: WaitOption = LOCK_WAIT_S,
        as_json: CountsJsonOption = False,
    ) -> None:
        """Successive JSON documents of the same entities become field transitions, by the
        instrumentation's diff rules; importing the same snapshots again doubles nothing."""
        from collectors.snapshots import Options, Split, import_snapshots
        from collectors.store import open_store, resolve_db

        if writer and writer_key:
            raise AuditError("--writer and --writer-key: give one of them")
        options = Options(
            id_key=id_key, entity_type=entity_type,
            splits=tuple(Split.parse(s) for s in split), writer=writer, writer_key=writer_key,
            ts_key=ts_key, exclude=tuple(exclude),
            list_keys=list_keys(list_key) if list_key else None,
        )
        try:
            options.rules()
        except TypeError as exc:
            raise AuditError(str(exc)) from None
        started = time.perf_counter()
        con = open_store(db, wait_s=wait)
        try:
            with ProgressBar("importing snapshots", start_at=_PROGRESS_FROM) as advance:
                summary = import_snapshots(con, paths, options, progress=advance)
        finally:
            con.close()
        elapsed = time.perf_counter() - started
        if as_json:
            print(json.dumps({**summary.__dict__, "seconds": round(elapsed, 3)}))
            return
        print(
            f"{summary.files} file(s), {summary.documents:,} documents of "
            f"{summary.entities:,} entities into {resolve_db(db)} in {elapsed:.2f} s: "
            f"{summary.events:,} events from {summary.writes:,} writes; "
            f"{summary.ingested:,} ingested, {summary.duplicates:,} duplicates skipped, "
            f"{summary.rejected:,} rejected"
        )
        print(f"  in the order of {summary.order}", file=sys.stderr)
        if summary.unknown_writers:
            print(
                f'  {summary.unknown_writers:,} document(s) without "{writer_key}": '
                "writer unknown",
                file=sys.stderr,
            )
        if summary.rejected:
            print("  (see `audit stats`; raw lines are in the rejected_events table)",
                  file=sys.stderr)
