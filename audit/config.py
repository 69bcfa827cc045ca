"""Settings from ``audit.toml``: detector thresholds and writer priorities.

Found in the working directory or given with ``--config``; every value has a default so a
missing file is fine, while a file that exists and is wrong is a clear error.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.errors import AuditError

DEFAULT_PRIORITIES: dict[str, int] = {
    "user": 100,
    "workflow": 80,
    "instantiation": 60,
    "polling_sync": 40,
}
DEFAULT_FILE = "audit.toml"


@dataclass(frozen=True)
class Config:
    oscillation_window_s: float = 60.0
    oscillation_min_changes: int = 3
    priority_window_s: float = 300.0
    default_priority: int = 50
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
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AuditError(f"config file {path} is not valid TOML: {exc}") from None
    return _from_dict(raw, str(path))


def _number(section: dict[str, Any], key: str, default: float, where: str, integer: bool = False):
    value = section.get(key, default)
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok or value < 0:
        kind = "a non-negative integer" if integer else "a non-negative number"
        raise AuditError(f"{where}: [{key}] must be {kind}, got {value!r}")
    return value


def _from_dict(raw: dict[str, Any], where: str) -> Config:
    osc = raw.get("oscillation", {})
    prio = raw.get("priority", {})
    if not isinstance(osc, dict) or not isinstance(prio, dict):
        raise AuditError(f"{where}: [oscillation] and [priority] must be tables")
    writers = dict(DEFAULT_PRIORITIES)
    for name, value in prio.get("writers", {}).items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise AuditError(f"{where}: priority of writer {name!r} must be an integer")
        writers[name] = value
    return Config(
        oscillation_window_s=float(_number(osc, "window", 60.0, where)),
        oscillation_min_changes=int(_number(osc, "min_changes", 3, where, integer=True)),
        priority_window_s=float(_number(prio, "window", 300.0, where)),
        default_priority=int(_number(prio, "default", 50, where, integer=True)),
        writer_priorities=writers,
        source=where,
    )
