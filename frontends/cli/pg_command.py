"""`audit pg install | uninstall | pull`: capture at PostgreSQL (docs/contract.md §6).

A thin layer over collectors.pg. psycopg is imported by the commands, not here, so the
rest of the CLI works without the `pg` extra.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Optional

import typer

from audit.errors import AuditError, first_line
from frontends.cli.options import LOCK_WAIT_S, DbOption, ListKeyOption, WaitOption, list_keys
from frontends.printable import printable

DsnOption = Annotated[
    str,
    typer.Option(
        "--dsn",
        envvar="AUDIT_PG_DSN",
        help="libpq connection string or postgresql:// URL (or $AUDIT_PG_DSN: keeps a "
        "password off the command line).",
        show_default=False,
    ),
]
TableOption = Annotated[str, typer.Option("--table", help="The table, optionally schema.table.")]


@contextmanager
def _postgres() -> Iterator[None]:
    """PostgreSQL's errors as one line each (docs/contract.md §4)."""
    try:
        import psycopg
    except ImportError:
        raise AuditError(
            "audit pg needs the PostgreSQL driver: pip install 'conflict-audit[pg]'"
        ) from None
    try:
        yield
    except psycopg.Error as exc:
        raise AuditError(f"PostgreSQL: {first_line(exc)}") from None


def register(app: typer.Typer) -> None:
    pg = typer.Typer(
        name="pg",
        help="Capture at PostgreSQL: a trigger records every row change, the pull makes "
        "transitions of them.",
        no_args_is_help=True,
    )
    app.add_typer(pg, name="pg")

    @pg.command()
    def install(
        dsn: DsnOption,
        table: TableOption,
        key: Annotated[
            Optional[list[str]],  # noqa: UP045 - typer reads the annotation at runtime
            typer.Option("--key", help="Column naming the entity (default: the primary key)."),
        ] = None,
        version_column: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option("--version-column", help="Integer column holding the row's version."),
        ] = None,
        entity_type: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option("--entity-type", help="Entity type of the events (default: the table)."),
        ] = None,
        exclude: Annotated[
            Optional[list[str]],  # noqa: UP045
            typer.Option("--exclude", help="Column, or pattern over column.path, not to "
                         "capture (repeatable; docs/diff.md)."),
        ] = None,
        list_key: ListKeyOption = [],  # noqa: B006 - typer reads it, never mutates it
    ) -> None:
        """Install the capture trigger on a table (again: its settings apply from then on)."""
        with _postgres():
            from collectors.pg import install as run_install

            done = run_install(dsn, table, key=key, version_column=version_column,
                               entity_type=entity_type, exclude=exclude or (),
                               list_keys=list_keys(list_key))
        versions = (f"versions from {done.version_column}" if done.version_column
                    else "no versions")
        print(f"capturing {done.table} as {done.entity_prefix}:<{','.join(done.key_columns)}> "
              f"(entity type {done.entity_type}, {versions}) into conflict_audit.row_changes")

    @pg.command()
    def uninstall(dsn: DsnOption, table: TableOption) -> None:
        """Remove the capture trigger from a table; what it captured stays."""
        with _postgres():
            from collectors.pg import uninstall as run_uninstall

            removed = run_uninstall(dsn, table)
        print(f"removed the capture trigger from {table}" if removed
              else f"{table} had no capture trigger")

    @pg.command()
    def pull(
        dsn: DsnOption,
        db: DbOption = None,
        wait: WaitOption = LOCK_WAIT_S,
    ) -> None:
        """Turn the captured row changes into transitions in the store, each exactly once."""
        from collectors.store import open_store, resolve_db

        with _postgres():
            from collectors.pg import pull as run_pull

            def progress(total) -> None:
                print(f"  {total.lines:,} rows read…", file=sys.stderr)

            con = open_store(db, wait_s=wait)
            try:
                summary = run_pull(dsn, con, progress=progress if sys.stderr.isatty() else None)
            finally:
                con.close()
        print(f"pulled {summary.ingested:,} transitions into {resolve_db(db)} "
              f"({summary.duplicates:,} already there, {summary.rejected:,} rejected)")
        for reason, count in summary.reasons.most_common(5):
            print(f"  rejected {count:,}× {printable(reason)}", file=sys.stderr)
