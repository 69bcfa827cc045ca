"""Options shared by every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from audit.diff import DEFAULT_LIST_KEYS
from audit.errors import AuditError

# Text, not a Path: a URL must reach collectors.stores.location as given (a Path would fold
# the // of clickhouse://).
DbOption = Annotated[
    Optional[str],  # noqa: UP045 - typer reads the annotation at runtime
    typer.Option(
        "--db",
        envvar="AUDIT_DB",
        metavar="STORE",
        help="The store: a DuckDB file, chdb:DIR or "
        "clickhouse://USER:PASSWORD@HOST:PORT/DATABASE (default: $AUDIT_DB, else "
        "./audit.duckdb).",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option("--config", help="audit.toml with thresholds and writer priorities."),
]
# collectors.store.LOCK_WAIT_S, repeated: importing the store imports duckdb, which `audit
# schema` does without. tests/frontends/cli/test_startup.py keeps them equal.
LOCK_WAIT_S = 60.0
WaitOption = Annotated[
    float,
    typer.Option(
        "--wait", min=0, metavar="SECONDS",
        help="Seconds to wait for another process holding the store (DuckDB lets one "
        "process open a store at a time).",
    ),
]
# `audit ingest` and `audit import snapshots`: what they stored, for a script.
CountsJsonOption = Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")]
# `audit import snapshots` and `audit pg install`: how lists are diffed (docs/diff.md).
ListKeyOption = Annotated[
    list[str],
    typer.Option(
        "--list-key", metavar="PATTERN=KEY",
        help="Diff the lists at PATTERN by KEY (repeatable; - for by position); default: any "
        "list whose elements all carry a unique id.",
    ),
]


def list_keys(specs: list[str]) -> dict[str, str | None]:
    """`--list-key PATTERN=KEY` (KEY `-`: by position), as the diff takes them: the given
    ones first, the default patterns last (docs/diff.md), a default given keeping its key.
    One form for every command that records (`audit import snapshots`, `audit pg install`)."""
    keys: dict[str, str | None] = {}
    for spec in specs:
        pattern, sep, key = spec.rpartition("=")
        if not sep or not pattern or not key:
            raise AuditError(f"--list-key {spec!r}: expected PATTERN=KEY (KEY - for by position)")
        keys[pattern] = None if key == "-" else key
    defaults = {pattern: keys.pop(pattern, key) for pattern, key in DEFAULT_LIST_KEYS.items()}
    return {**keys, **defaults}
