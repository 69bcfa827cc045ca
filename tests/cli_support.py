"""Running the `audit` command line in this process, as a user would in a shell: argv in,
stdout, stderr and exit status out. A subprocess costs ~0.4 s of start-up per call; tests
spawn one only where the process is the point (signals, a real exit status, imports)."""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass

import pytest

from frontends.cli import main


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run(*args: object, cwd=None, columns: int = 80, stdin: str | None = None,
        env: dict[str, str] | None = None) -> Result:
    """`audit ARGS` in this process; $AUDIT_DB and colour off unless ``env`` sets them."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", str(columns))
        mp.setenv("NO_COLOR", "1")
        mp.delenv("AUDIT_DB", raising=False)
        mp.delenv("AUDIT_DEBUG", raising=False)
        for name, value in (env or {}).items():
            mp.setenv(name, value)
        if cwd is not None:
            mp.chdir(cwd)
        if stdin is not None:
            mp.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in args])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    return Result(code, out.getvalue(), err.getvalue())
