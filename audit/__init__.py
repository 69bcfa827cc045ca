"""conflict-audit instrumentation: what services import to record field transitions.

    import audit
    audit.configure(sink=SpoolSink("/var/spool/audit"), redact=("content",))

    @audit.tracked(entity=lambda block: block["id"], entity_type="block")
    def apply_update(block, update): ...

    with audit.writer("workflow", actor="engine-1"):
        apply_update(block, update)

Importing this package is cheap: most of the API loads with its first use, OpenTelemetry
with the first event, structlog only for processors of your own, DeepDiff only for values
that are not JSON-like, and nothing here imports DuckDB, the collectors or the CLI. Sinks
come from ``collectors`` (spool, DuckDB, OpenTelemetry) or are any callable taking an event
dict.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Imported now, not on first use: `diff` and `writer` are also the names of submodules, and
# importing a submodule binds its name on the package, which would shadow a lazy function.
from audit.diff import MISSING, diff
from audit.writer import Writer, current_writer, writer

if TYPE_CHECKING:
    from audit.emit import JSONLinesSink, OTelLogSink, StructlogSink, flush
    from audit.guard import (
        ConflictError,
        compare_and_swap,
        field_writer,
        merge_by_priority,
        priority_allows,
    )
    from audit.health import stats
    from audit.settings import Settings, configure, reset
    from audit.track import annotate, record, tracked, tracking

# The rest loads on first use (PEP 562): importing any submodule (the CLI, the event schema)
# imports this package first, and should not load the whole instrumentation with it.
_LAZY = {
    "JSONLinesSink": "audit.emit",
    "OTelLogSink": "audit.emit",
    "StructlogSink": "audit.emit",
    "flush": "audit.emit",
    "ConflictError": "audit.guard",
    "compare_and_swap": "audit.guard",
    "field_writer": "audit.guard",
    "merge_by_priority": "audit.guard",
    "priority_allows": "audit.guard",
    "stats": "audit.health",
    "Settings": "audit.settings",
    "configure": "audit.settings",
    "reset": "audit.settings",
    "annotate": "audit.track",
    "record": "audit.track",
    "tracked": "audit.track",
    "tracking": "audit.track",
}

# Submodules that `import audit` used to load as a side effect stay reachable as attributes.
_SUBMODULES = frozenset(
    ("config", "emit", "errors", "event", "guard", "health", "redact", "settings", "stamp", "track")
)


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"audit.{name}")
    else:
        raise AttributeError(f"module 'audit' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "MISSING",
    "ConflictError",
    "JSONLinesSink",
    "OTelLogSink",
    "Settings",
    "StructlogSink",
    "Writer",
    "annotate",
    "compare_and_swap",
    "configure",
    "current_writer",
    "diff",
    "field_writer",
    "flush",
    "merge_by_priority",
    "priority_allows",
    "record",
    "reset",
    "stats",
    "tracked",
    "tracking",
    "writer",
]
