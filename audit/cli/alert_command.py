"""Placeholder: filled in by the issue that owns these commands."""

import typer


def register(app: typer.Typer) -> None:
    pass
