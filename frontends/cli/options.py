"""Options shared by every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

DbOption = Annotated[
    Optional[Path],  # noqa: UP045 - typer reads the annotation at runtime
    typer.Option(
        "--db",
        envvar="AUDIT_DB",
        help="DuckDB store (default: $AUDIT_DB, else ./audit.duckdb).",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option("--config", help="audit.toml with thresholds and writer priorities."),
]
