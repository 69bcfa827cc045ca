"""Every command that reads or writes the store waits for another process holding it, for
--wait seconds, then gives up with one line (docs/contract.md §4)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sample_event import event

from collectors.ingest import load_lines
from collectors.store import open_store
from frontends.cli import main

HOLD = (
    "import sys, duckdb\n"
    "con = duckdb.connect(sys.argv[1])\n"
    "print('holding', flush=True)\n"
    "sys.stdin.read()\n"  # until the test closes our stdin
)


@pytest.fixture(scope="module")
def held(tmp_path_factory) -> Iterator[Path]:
    """A store another process holds open for the whole module."""
    db = tmp_path_factory.mktemp("held") / "audit.duckdb"
    con = open_store(db)
    load_lines(con, [json.dumps(event())], "test")
    con.close()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "holding\n"
        yield db
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


COMMANDS = [
    ["ingest", "-"],
    ["stats"],
    ["check"],
    ["timeline", "block-A"],
    ["replay", "block-A", "--at", "2026-01-01T11:00:00Z"],
    ["owners"],
    ["report"],
    ["report", "--html", "{tmp}/r.html"],
    ["alert", "--dry-run"],
    ["alert", "--dsn", "http://key@127.0.0.1:9/1"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_each_command_waits_then_gives_up_in_one_line(held, command, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path) for a in command]
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--db", str(held), "--wait", "0.3"])
    out, err = capsys.readouterr()
    assert exited.value.code == 2, (out, err)
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"{held} is in use by another process (PID ")
    assert lines[0].endswith("); waiting…")
    assert lines[-1].startswith(f"error: {held} is locked by another process (PID ")
    assert lines[-1].endswith("and stayed locked for 0.3 s; try again when it has finished")
    assert len(lines) == 2 and out == ""


def test_wait_must_not_be_negative(held, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["check", "--db", str(held), "--wait", "-1"])
    assert exited.value.code == 2
    assert "--wait" in capsys.readouterr().err
