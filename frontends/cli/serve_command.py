"""`audit serve`: the HTTP collector (docs/contract.md §5), thin over `collectors.serve`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from audit.errors import AuditError

# collectors.serve's DEFAULT_PORT and DEFAULT_MAX_BODY_MB, repeated: importing it loads
# Starlette and uvicorn on every start of the CLI. tests/frontends/cli/test_startup.py keeps
# them equal.
DEFAULT_PORT = 4318
DEFAULT_MAX_BODY_MB = 4.0


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        spool: Annotated[
            Path,
            typer.Option("--spool", file_okay=False,
                         help="Folder the events are written to (what `audit ingest DIR` and "
                              "`audit alert --watch DIR` read). Created if missing."),
        ],
        host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[
            int, typer.Option(min=0, max=65535, help="Port (0: any free one).")
        ] = DEFAULT_PORT,
        token_file: Annotated[
            Optional[Path],  # noqa: UP045 - typer reads the annotation at runtime
            typer.Option("--token-file", dir_okay=False,
                         help="File holding the bearer token every POST must carry."),
        ] = None,
        no_auth: Annotated[
            bool, typer.Option("--no-auth", help="No token (only on a loopback address).")
        ] = False,
        max_body_mb: Annotated[
            float, typer.Option(help="Largest body, also once decompressed (MiB).")
        ] = DEFAULT_MAX_BODY_MB,
        cors_origin: Annotated[
            Optional[list[str]],  # noqa: UP045
            typer.Option("--cors-origin",
                         help="A browser origin allowed to send (repeatable); none by default."),
        ] = None,
        workers: Annotated[
            int, typer.Option(min=1, help="Processes sharing the port, each with its own "
                              "spool file (one per core decodes OTLP fastest).")
        ] = 1,
    ) -> None:
        """Receive transitions over HTTP (OTLP/HTTP logs at /v1/logs, JSON Lines at /v1/events)
        into a spool folder; each answer comes once its events are on disk."""
        from collectors.serve import read_token
        from collectors.serve import serve as run

        if token_file is not None and no_auth:
            raise AuditError("give --token-file or --no-auth, not both")
        if token_file is None and not no_auth:
            raise AuditError(
                "give --token-file FILE (the bearer token clients send), "
                "or --no-auth on a loopback address"
            )
        token = read_token(token_file) if token_file is not None else None

        def announce(url: str) -> None:
            auth = "bearer token" if token is not None else "no auth"
            print(f"audit serve: listening on {url} ({auth}), spool {spool}", file=sys.stderr,
                  flush=True)

        raise typer.Exit(run(spool, host=host, port=port, token=token, max_body_mb=max_body_mb,
                             cors_origins=cors_origin or (), workers=workers,
                             announce=announce))
