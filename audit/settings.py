"""Process-wide settings of the instrumentation, changed with ``audit.configure``.

Settings are an immutable value swapped in one assignment, so a write running while another
thread reconfigures sees either the old settings or the new ones, never half of each.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from audit.config import Config
from audit.diff import DEFAULT_LIST_KEYS, Rules

VERSIONS = ("auto", "always")


@dataclass(frozen=True)
class Settings:
    sinks: tuple[Any, ...] = ()
    meta_key: str = "_meta"
    redact: tuple[str, ...] = ()
    redact_key: bytes | None = None
    otel: bool = True
    span_events: bool = False  # also add each transition to the active span (see configure)
    writer: str = "unknown"  # the writer of writes made outside any `audit.writer` scope
    field_stamps: bool = False  # keep who last wrote each field in the metadata (priority rule)
    processors: tuple[Callable[..., Any], ...] = ()
    config: Config | None = None  # writer priorities for the priority rule; None: audit.toml
    enabled: bool = True
    list_keys: tuple[tuple[str, str | None], ...] = tuple(DEFAULT_LIST_KEYS.items())
    exclude: tuple[str, ...] = ()
    versions: str = "auto"  # "always": claim a version for documents that carry none

    @functools.cached_property
    def rules(self) -> Rules:
        """The diff rules (docs/diff.md): keyed lists, excluded paths, and the stamp."""
        return Rules(dict(self.list_keys), self.exclude, stamp_key=self.meta_key)


_UNSET: Any = object()
_settings = Settings()


def current() -> Settings:
    return _settings


def configure(
    *,
    sink: Any = _UNSET,
    meta_key: str = _UNSET,
    redact: Iterable[str] = _UNSET,
    redact_key: bytes | None = _UNSET,
    otel: bool = _UNSET,
    span_events: bool = _UNSET,
    writer: str = _UNSET,
    field_stamps: bool = _UNSET,
    processors: Iterable[Callable[..., Any]] = _UNSET,
    config: Config | None = _UNSET,
    enabled: bool = _UNSET,
    list_keys: Mapping[str, str | None] = _UNSET,
    exclude: Iterable[str] = _UNSET,
    versions: str = _UNSET,
) -> Settings:
    """Change the given settings, keep the others (like ``structlog.configure``).

    ``sink``: one sink or a list of them, replacing the current ones (``None`` or ``[]``: no
    sink). A sink is a callable taking one event dict, or an object with
    ``write_line(line: bytes)`` that receives the event rendered once as a JSON line;
    ``flush()`` is used when present; a sink with ``reports_health = True`` counts its own
    sent events (in ``audit.health``) instead of being counted when it returns.
    ``redact``: field patterns whose values leave the process hashed. ``otel``: add the
    active OpenTelemetry span's ids to each event. ``span_events``: also add each event to
    that span as a span event (what `DuckDBSpanExporter` reads); off by default, because
    OpenTelemetry is deprecating span events in favour of log-based events (`OTelLogSink`),
    and the SDK's checks of a span event's attributes nearly double what a write costs in a span.
    ``processors``: extra structlog processors run before the sinks.
    ``enabled=False`` makes tracked functions plain calls and emits nothing; store-side
    ``record``/``compare_and_swap`` still stamp versions, so locking keeps working.
    ``list_keys``: ``{path pattern: key}``, lists whose elements all carry a unique key are
    diffed by it (default ``{"*": "id"}``; ``{}``: every list by position). ``exclude``: path
    patterns that are never recorded (``*.isLoading``, ``nodes[*].position``); a write that
    changes only those changes nothing (docs/diff.md). ``versions``: ``"auto"`` claims a
    version only for documents that carry one (``_meta.version``) or where the caller passes
    one; ``"always"`` starts unversioned documents at version 1.
    """
    global _settings
    changes: dict[str, Any] = {}
    if sink is not _UNSET:
        if sink is None:
            changes["sinks"] = ()
        elif isinstance(sink, list | tuple):
            changes["sinks"] = tuple(sink)
        else:
            changes["sinks"] = (sink,)
        for s in changes["sinks"]:
            if not callable(s) and not callable(getattr(s, "write_line", None)):
                raise TypeError(f"not a sink (a callable or an object with write_line): {s!r}")
    if meta_key is not _UNSET:
        if not isinstance(meta_key, str) or not meta_key:
            raise TypeError("meta_key must be a non-empty string")
        changes["meta_key"] = meta_key
    if redact is not _UNSET:
        changes["redact"] = (redact,) if isinstance(redact, str) else tuple(redact or ())
    if processors is not _UNSET:
        changes["processors"] = tuple(processors or ())
    if list_keys is not _UNSET or exclude is not _UNSET:
        keys = dict(_settings.list_keys) if list_keys is _UNSET else list_keys
        patterns = _settings.exclude if exclude is _UNSET else exclude
        rules = Rules(keys, patterns)  # raises on a bad pattern now, not in a write
        changes["list_keys"], changes["exclude"] = rules.list_keys, rules.exclude
    if versions is not _UNSET:
        if versions not in VERSIONS:
            raise ValueError(f"versions must be one of {', '.join(VERSIONS)}, not {versions!r}")
        changes["versions"] = versions
    for name, value in (
        ("redact_key", redact_key), ("otel", otel), ("span_events", span_events),
        ("writer", writer),
        ("field_stamps", field_stamps), ("config", config), ("enabled", enabled),
    ):
        if value is not _UNSET:
            changes[name] = value
    _settings = dataclasses.replace(_settings, **changes)
    return _settings


def reset() -> Settings:
    """Back to the defaults: no sinks (they are not closed), nothing redacted."""
    global _settings
    _settings = Settings()
    return _settings
