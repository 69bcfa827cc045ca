"""What starting the command line costs: a command imports only what it uses."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import audit
from collectors.store import open_store
from frontends.cli import alert_command, main, report_command

# What other commands (or the instrumentation) use, and `audit ingest` must not import.
NOT_FOR_INGEST = (
    "sentry_sdk",
    "rich",
    "deepdiff",
    "structlog",
    "frontends.alert",
    "frontends.report",
    "audit.track",
)


def python(code: str, cwd) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def loaded_after(tmp_path, *argv: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `audit ARGV`."""
    out = python(
        "import json, sys\n"
        "from frontends.cli import main\n"
        "try:\n"
        f"    main({list(argv)!r})\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print(json.dumps(sorted(sys.modules)))\n",
        tmp_path,
    )
    return set(json.loads(out.splitlines()[-1]))


def test_ingest_does_not_import_what_only_other_commands_use(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    loaded = loaded_after(tmp_path, "ingest", "--db", "x.duckdb", "empty.jsonl")
    assert "collectors.ingest" in loaded
    assert not {
        m for m in loaded for heavy in NOT_FOR_INGEST if m == heavy or m.startswith(heavy + ".")
    }


def test_schema_does_not_import_duckdb(tmp_path):
    assert "duckdb" not in loaded_after(tmp_path, "schema")


def test_option_defaults_are_the_librarys():
    from collectors import serve, store
    from frontends import alert
    from frontends.cli import options, serve_command
    from frontends.report import model

    assert options.LOCK_WAIT_S == store.LOCK_WAIT_S
    assert alert_command.DEFAULT_MAX == alert.DEFAULT_MAX
    assert alert_command.DEFAULT_TIMEOUT_S == alert.DEFAULT_TIMEOUT_S
    assert report_command.DEFAULT_TOP == model.DEFAULT_TOP
    assert report_command.DEFAULT_PER_FIELD == model.DEFAULT_PER_FIELD
    assert serve_command.DEFAULT_PORT == serve.DEFAULT_PORT
    assert serve_command.DEFAULT_MAX_BODY_MB == serve.DEFAULT_MAX_BODY_MB


def test_a_database_error_is_still_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AUDIT_DB", raising=False)
    con = open_store(tmp_path / "broken.duckdb")
    con.execute("DROP VIEW applied_events")
    con.close()
    with pytest.raises(SystemExit) as exc:
        main(["owners", "--db", str(tmp_path / "broken.duckdb")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: database: Catalog Error:") and err.count("\n") == 1


def _failing_stats(con):
    raise RuntimeError("boom\nsecond line")


def test_an_unexpected_exception_is_one_line_and_status_2(tmp_path, capsys, monkeypatch):
    """A bug nobody foresaw (injected here: the real ones are fixed as they are found) must
    not print a traceback, nor exit 1, which `audit check` reserves for findings."""
    import collectors.stats

    monkeypatch.delenv("AUDIT_DEBUG", raising=False)
    monkeypatch.setattr(collectors.stats, "store_stats", _failing_stats)
    open_store(tmp_path / "s.duckdb").close()
    with pytest.raises(SystemExit) as exc:
        main(["stats", "--db", str(tmp_path / "s.duckdb")])
    assert exc.value.code == 2
    assert capsys.readouterr().err == (
        "error: unexpected RuntimeError: boom (a bug; AUDIT_DEBUG=1 shows where)\n"
    )
    monkeypatch.setenv("AUDIT_DEBUG", "1")
    with pytest.raises(SystemExit) as exc:
        main(["stats", "--db", str(tmp_path / "s.duckdb")])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.startswith("Traceback (most recent call last):") and "_failing_stats" in err
    assert err.endswith("error: unexpected RuntimeError: boom (a bug; AUDIT_DEBUG=1 shows where)\n")


def test_import_audit_loads_the_instrumentation_on_first_use(tmp_path):
    python(
        "import sys, audit\n"
        "assert 'audit.track' not in sys.modules\n"
        "assert audit.tracked is sys.modules['audit.track'].tracked\n"
        "assert audit.config.load_config\n",  # submodules it used to load stay attributes
        tmp_path,
    )


def test_diff_and_writer_stay_functions_when_their_submodules_are_imported():
    import audit.diff
    import audit.writer

    assert audit.diff is sys.modules["audit.diff"].diff
    assert audit.writer is sys.modules["audit.writer"].writer


def test_star_import_and_dir_cover_the_api():
    namespace: dict[str, object] = {}
    exec("from audit import *", namespace)
    assert set(audit.__all__) <= set(namespace)
    assert set(audit.__all__) <= set(dir(audit))
