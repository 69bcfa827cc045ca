"""Settings from ``audit.toml``: detector thresholds and writer priorities.

Found in the working directory or given with ``--config``; every value has a default so a
missing file is fine, while a file that exists and is wrong is a clear error. The file is
read strictly: a table or key this module does not know (``windw = 30``) is an error naming
the key and the file, never a setting silently ignored (docs/contract.md §3).
"""

from __future__ import annotations

import ast
import difflib
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.errors import AuditError

DEFAULT_FILE = "audit.toml"
# The detectors hand priorities to DuckDB as INTEGER (32 bits): a larger one cannot be used.
_PRIORITY_RANGE = (-(2**31), 2**31 - 1)

# The default values are written once, as SQL, so that the detector files run in the DuckDB
# shell with them too: queries/defaults.sql, one `SET VARIABLE audit_<name> =
# coalesce(getvariable('audit_<name>'), value)` per setting, the value a number or
# `map([writers], [priorities])`. A data file of the queries package, read here without
# importing the package (a service's `import audit` loads nothing of the auditing side).
_DEFAULTS_SQL = Path(__file__).resolve().parent.parent / "queries" / "defaults.sql"
_SETTING = re.compile(
    r"SET VARIABLE audit_(\w+)\s*=\s*coalesce\(\s*getvariable\('audit_\1'\),\s*(.+?)\);",
    re.DOTALL,
)
_MAP = re.compile(r"map\((\[.*?\]),\s*(\[.*?\])\)", re.DOTALL)


def _read_defaults(path: Path = _DEFAULTS_SQL) -> dict[str, Any]:
    """Each setting of queries/defaults.sql and its value, by its name without `audit_`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("--"))
    out: dict[str, Any] = {}
    for name, value in _SETTING.findall(text):
        pairs = _MAP.fullmatch(value.strip())
        if pairs:  # SQL's string and number literals read as Python's
            keys, values = (ast.literal_eval(part) for part in pairs.groups())
            out[name] = dict(zip(keys, values, strict=True))
        else:
            out[name] = ast.literal_eval(value.strip())
    return out


_DEFAULTS = _read_defaults()
DEFAULT_PRIORITIES: dict[str, int] = _DEFAULTS["writer_priorities"]


@dataclass(frozen=True)
class Config:
    """The settings the detectors and ``audit.merge_by_priority`` apply; each field is the
    variable ``audit_<field>`` of the SQL files."""

    oscillation_window_s: float = float(_DEFAULTS["oscillation_window_s"])
    oscillation_min_changes: int = _DEFAULTS["oscillation_min_changes"]
    priority_window_s: float = float(_DEFAULTS["priority_window_s"])
    default_priority: int = _DEFAULTS["default_priority"]
    writer_priorities: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PRIORITIES))
    source: str | None = None  # the file it came from, for messages

    def priority_of(self, writer: str) -> int:
        return self.writer_priorities.get(writer, self.default_priority)


def load_config(path: str | Path | None = None) -> Config:
    """Load ``path``, or ``./audit.toml`` when it exists, else the defaults."""
    if path is None:
        candidate = Path(DEFAULT_FILE)
        if not candidate.is_file():
            return Config()
        path = candidate
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AuditError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise AuditError(f"config file {path} is a directory") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AuditError(f"config file {path} is not valid TOML: {exc}") from None
    return config_from_dict(raw, str(path))


# --- the value checks: each returns the value or raises ValueError with what it must be -----


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("a number of seconds")
    if not math.isfinite(value) or value < 0:
        raise ValueError("a finite number of seconds, 0 or more")
    return float(value)


def _positive_integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("an integer, 1 or more")
    return value


def _priority(value: Any) -> int:
    low, high = _PRIORITY_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"an integer from {low} to {high}")
    return value


# Every table and key the file may hold: key -> (Config field, check). Writer names under
# [priority.writers] are free; each value is a priority.
_TABLES: dict[str, dict[str, tuple[str, Callable[[Any], Any]]]] = {
    "oscillation": {
        "window": ("oscillation_window_s", _seconds),
        "min_changes": ("oscillation_min_changes", _positive_integer),
    },
    "priority": {
        "window": ("priority_window_s", _seconds),
        "default": ("default_priority", _priority),
    },
}
_WRITERS = "writers"  # the sub-table [priority.writers]


def _unknown(what: str, name: str, known: list[str], where: str) -> AuditError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return AuditError(f"{where}: unknown {what}{hint}; known: {', '.join(known)}")


def config_from_dict(raw: dict[str, Any], where: str = DEFAULT_FILE) -> Config:
    """A Config from parsed TOML; any unknown table or key, or a value of the wrong type,
    is an AuditError naming it and ``where``."""
    values: dict[str, Any] = {"writer_priorities": dict(DEFAULT_PRIORITIES), "source": where}
    for table_name, table in raw.items():
        keys = _TABLES.get(table_name)
        if keys is None:
            what = f"table [{table_name}]" if isinstance(table, dict) else (
                f"key {table_name!r} outside any table")
            raise _unknown(what, table_name, list(_TABLES), where)
        if not isinstance(table, dict):
            raise AuditError(f"{where}: {table_name} must be a table ([{table_name}])")
        allowed = list(keys) + ([_WRITERS] if table_name == "priority" else [])
        for key, value in table.items():
            if table_name == "priority" and key == _WRITERS:
                values["writer_priorities"].update(_writer_priorities(value, where))
                continue
            if key not in keys:
                raise _unknown(f"key {key!r} in [{table_name}]", key, allowed, where)
            attribute, check = keys[key]
            try:
                values[attribute] = check(value)
            except ValueError as exc:
                raise AuditError(
                    f"{where}: [{table_name}] {key} must be {exc}, got {value!r}"
                ) from None
    return Config(**values)


def _writer_priorities(table: Any, where: str) -> dict[str, int]:
    if not isinstance(table, dict):
        raise AuditError(f"{where}: priority.writers must be a table ([priority.writers])")
    out = {}
    for name, value in table.items():
        try:
            out[name] = _priority(value)
        except ValueError as exc:
            raise AuditError(
                f"{where}: [priority.writers] priority of writer {name!r} must be {exc}, "
                f"got {value!r}"
            ) from None
    return out
