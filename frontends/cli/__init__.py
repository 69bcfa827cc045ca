"""The `audit` command line: a thin layer over the Python API.

Each command group lives in its own module with a ``register(app)`` function. Errors are
one line on stderr and exit status 2 (docs/contract.md §4), never a traceback: an exception
nobody expected is one line too (the traceback with ``AUDIT_DEBUG=1``), and never exit
status 1, which `audit check` reserves for "findings".
"""

from __future__ import annotations

import os
import sys
import traceback

try:
    import typer
    import typer.main
except ImportError as exc:  # an instrumentation-only install: say what to install, no traceback
    print(
        f"error: the audit command needs the auditing side ({exc.name} is missing): "
        "pip install 'conflict-audit[cli]'",
        file=sys.stderr,
    )
    sys.exit(2)

from audit.errors import AuditError, first_line
from collectors import allocator
from frontends.printable import printable

app = typer.Typer(
    name="audit",
    help="Find state-consistency bugs (lost updates, stale overwrites, oscillation, "
    "priority inversions) in field-transition events.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


_registered = False


def _register_all() -> None:
    global _registered
    if _registered:  # main() may run many times in one process (tests, embedding)
        return
    _registered = True
    # Imported here so `import audit` stays cheap for services that only instrument. The
    # command modules import their heavy dependencies (sentry_sdk, rich, the report) inside
    # the commands, so that each command pays only for its own.
    from frontends.cli import (
        alert_command,
        demo_command,
        detect_commands,
        import_command,
        pg_command,
        report_command,
        serve_command,
        spool_command,
        store_commands,
    )

    # In the order `audit --help` lists them.
    for module in (store_commands, detect_commands, alert_command, report_command, demo_command,
                   serve_command, spool_command, pg_command, import_command):
        module.register(app)


class _NotRaised(Exception):
    pass


def _duckdb_error() -> type[Exception]:
    # Only a command that imported duckdb can raise its errors; the others need not import it
    # (~65 ms) to name the class in an except clause.
    duckdb = sys.modules.get("duckdb")
    return duckdb.Error if duckdb is not None else _NotRaised


def _memory_hint(exc: Exception) -> str:
    """What to do when a command ran out of the memory it may hold (collectors/store.py)."""
    if not isinstance(exc, sys.modules["duckdb"].OutOfMemoryException):
        return ""
    from collectors.store import memory_limit

    return (f"; a command may hold {memory_limit()} of memory: set AUDIT_MEMORY_LIMIT "
            "higher (e.g. 2GB)")


def _fail(message: str) -> int:
    print(f"error: {printable(message)}", file=sys.stderr)  # it may quote names from the store
    return 2


def main(argv: list[str] | None = None) -> None:
    allocator.configure()  # before any command loads DuckDB (collectors/allocator.py says why)
    _register_all()
    command = typer.main.get_command(app)
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        argv = ["--help"]
    try:
        # Not standalone: usage errors come back to us and are printed as one line.
        result = command.main(args=argv, prog_name="audit", standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(_fail("interrupted"))
    except typer.TyperException as exc:
        sys.exit(_fail(exc.format_message().splitlines()[0]))
    except AuditError as exc:
        sys.exit(_fail(str(exc)))
    except _duckdb_error() as exc:
        sys.exit(_fail(f"database: {first_line(exc)}{_memory_hint(exc)}"))
    except OSError as exc:
        sys.exit(_fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)))
    except KeyboardInterrupt:
        sys.exit(_fail("interrupted"))
    except Exception as exc:  # a bug: still one line and status 2, not a traceback and 1
        if os.environ.get("AUDIT_DEBUG"):
            traceback.print_exc()
        sys.exit(_fail(
            f"unexpected {type(exc).__name__}: {first_line(exc)} "
            "(a bug; AUDIT_DEBUG=1 shows where)"
        ))
    sys.exit(result if isinstance(result, int) else 0)
