"""audit.toml is read strictly: an unknown table or key, or a value of the wrong type, is a
one-line error naming it and the file (exit 2 from the command line)."""

from __future__ import annotations

import pytest

from audit.config import DEFAULT_PRIORITIES, Config, load_config
from audit.errors import AuditError
from frontends.cli import main


def write(tmp_path, text: str):
    path = tmp_path / "audit.toml"
    path.write_text(text)
    return path


def test_a_full_file_sets_every_value(tmp_path):
    path = write(tmp_path, """
[oscillation]
window = 30
min_changes = 4

[priority]
window = 120.5
default = 10

[priority.writers]
user = 1000
robot = -5
""")
    config = load_config(path)
    assert config == Config(
        oscillation_window_s=30.0, oscillation_min_changes=4, priority_window_s=120.5,
        default_priority=10, writer_priorities={**DEFAULT_PRIORITIES, "user": 1000, "robot": -5},
        source=str(path),
    )


def test_a_missing_value_keeps_its_default(tmp_path):
    config = load_config(write(tmp_path, "[oscillation]\nwindow = 5\n"))
    assert (config.oscillation_window_s, config.oscillation_min_changes) == (5.0, 3)
    assert config.priority_window_s == Config().priority_window_s
    assert config.writer_priorities == DEFAULT_PRIORITIES


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[oscillation]\nwindw = 30\n",
         "unknown key 'windw' in [oscillation] (did you mean 'window'?)"),
        ("[oscilation]\nwindow = 30\n",
         "unknown table [oscilation] (did you mean 'oscillation'?)"),
        ("window = 30\n", "unknown key 'window' outside any table"),
        ("[priority]\nwriter = {user = 5}\n",
         "unknown key 'writer' in [priority] (did you mean 'writers'?)"),
        ("[report]\ntop = 5\n", "unknown table [report]; known: oscillation, priority"),
        ("oscillation = 5\n", "oscillation must be a table"),
        ("[priority]\nwriters = 5\n", "priority.writers must be a table"),
    ],
)
def test_an_unknown_table_or_key_is_named_with_the_file(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(AuditError) as raised:
        load_config(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[oscillation]\nwindow = "30"\n', "[oscillation] window must be a number of seconds, "
                                            "got '30'"),
        ("[oscillation]\nwindow = -1\n", "[oscillation] window must be a finite number"),
        ("[priority]\nwindow = nan\n", "[priority] window must be a finite number"),
        ("[priority]\nwindow = inf\n", "[priority] window must be a finite number"),
        ("[oscillation]\nwindow = true\n", "must be a number of seconds, got True"),
        ("[oscillation]\nmin_changes = 2.5\n", "min_changes must be an integer, 1 or more"),
        ("[oscillation]\nmin_changes = 0\n", "min_changes must be an integer, 1 or more"),
        ("[priority]\ndefault = 1e3\n", "[priority] default must be an integer"),
        ("[priority]\ndefault = 9999999999\n", "from -2147483648 to 2147483647"),
        ("[priority.writers]\nuser = \"high\"\n",
         "priority of writer 'user' must be an integer"),
    ],
)
def test_values_are_type_checked(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(AuditError, match="^" + str(path).replace("\\", "\\\\")) as raised:
        load_config(path)
    assert message in str(raised.value)


def test_the_command_line_exits_2_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "[oscillation]\nwindw = 30\n")
    with pytest.raises(SystemExit) as exited:
        main(["check", "--db", str(tmp_path / "none.duckdb")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == ("error: audit.toml: unknown key 'windw' in [oscillation] "
                   "(did you mean 'window'?); known: window, min_changes\n")
