"""`audit pg install` and `uninstall` as a user runs them: options, output, one-line errors."""

from __future__ import annotations

import json

import psycopg
import pytest
from pg_events import pulled

from frontends.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


@pytest.fixture
def blocks(pg_dsn) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE blocks (id text PRIMARY KEY, content jsonb, version int)")
        conn.execute("INSERT INTO blocks VALUES ('b1', %s, 1)", [json.dumps(
            {"files": [{"name": "f1", "s": 1}], "isLoading": False})])
    return pg_dsn


def test_install_with_list_keys_and_excludes_then_uninstall(blocks, capsys, monkeypatch):
    monkeypatch.setenv("AUDIT_PG_DSN", blocks)  # the DSN need not be on the command line
    code, out, _ = run(capsys, "pg", "install", "--table", "blocks", "--version-column",
                       "version", "--list-key", "*.files=name", "--exclude", "*.isLoading")
    assert code == 0
    assert out == ("capturing public.blocks as blocks:<id> (entity type blocks, versions from "
                   "version) into conflict_audit.row_changes\n")
    with psycopg.connect(blocks, autocommit=True) as conn:
        conn.execute("""UPDATE blocks SET content = '{"files": [{"name": "f1", "s": 2}],
                        "isLoading": true}', version = 2""")
    assert [r["field"] for r in pulled(blocks)] == ["content.files[f1].s"]
    assert run(capsys, "pg", "uninstall", "--table", "blocks")[:2] == (
        0, "removed the capture trigger from blocks\n")
    assert run(capsys, "pg", "uninstall", "--table", "blocks")[1] == (
        "blocks had no capture trigger\n")


@pytest.mark.parametrize(("argv", "message"), [
    (["--table", "blocks", "--version-column", "content"], "versions are integers"),
    (["--table", "blocks", "--list-key", "nodes"], "expected PATTERN=KEY"),
    (["--table", "nope"], "no table 'nope'"),
])
def test_install_errors_are_one_line_and_exit_2(blocks, capsys, argv, message):
    code, out, err = run(capsys, "pg", "install", "--dsn", blocks, *argv)
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_an_unreachable_server_is_one_line_and_exit_2(tmp_path, capsys):
    code, _, err = run(capsys, "pg", "uninstall", "--dsn", f"host={tmp_path} port=1",
                       "--table", "t")
    assert code == 2 and err.startswith("error: cannot connect to PostgreSQL")
    assert err.count("\n") == 1
