"""Guards a store can put in front of a write: compare-and-swap and the priority rule.

``compare_and_swap`` is optimistic locking (versions and compare-and-swap): a
write made from a version that is no longer the stored one is refused with a
`ConflictError`, and the refused write is still recorded, as events marked
``attrs.rejected = true``, so what it would have done is not lost. ``priority_allows`` and
``merge_by_priority`` are the writer-priority rule: a write from a lower-priority writer must
not overwrite a field a higher-priority writer wrote recently. Both are checks, not locks:
call them inside the store's own lock or transaction, between reading the stored document
and saving.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from audit import health, settings
from audit.config import Config, load_config
from audit.diff import MISSING, diff, locate, split_path
from audit.emit import emit
from audit.stamp import field_stamps, last_writer_of, plain, version_of
from audit.track import _who, build_events, record


class ConflictError(Exception):
    """A compare-and-swap found the stored version moved on (HTTP 409 in a service).

    Re-read the stored document, re-apply the change and try again, or ask the user.
    """

    def __init__(
        self,
        entity: str,
        *,
        writer: str,
        expected_version: int | None,
        current_version: int | None,
        current_writer: str | None,
        events: list[dict[str, Any]] | None = None,
    ):
        self.entity = entity
        self.writer = writer
        self.expected_version = expected_version
        self.current_version = current_version
        self.current_writer = current_writer
        self.events = events or []  # the rejected write, as recorded
        by = f", last written by {current_writer}" if current_writer else ""
        super().__init__(
            f"{entity}: {writer} wrote from version {expected_version} but the stored "
            f"version is {current_version}{by}; re-read and retry"
        )


def compare_and_swap(
    entity: Any,
    current: Any,
    new: Any,
    *,
    expected_version: int | None = None,
    entity_type: str | None = None,
    source_ts: Any = None,
    attrs: Mapping[str, Any] | None = None,
    writer: str | None = None,
) -> list[dict[str, Any]]:
    """Accept ``new`` over ``current`` only if ``current`` is still at ``expected_version``.

    ``current``: the stored document (None: none yet, version 0); ``new``: the one about to
    be stored; ``expected_version``: the version ``new`` was read at (default: the version
    in ``new``'s stamp). Accepted: the write is recorded like `audit.record`, ``new`` is
    stamped with version current+1, the events are returned and the caller saves ``new``.
    Refused: the write is recorded with ``attrs.rejected = true`` (no ``version``, since it
    produced none) and `ConflictError` is raised, even when it would change nothing (saving
    it would still put an old stamp back).
    """
    s = settings.current()
    if expected_version is None:
        expected_version = version_of(new, s.meta_key) or 0
    current_version = version_of(current, s.meta_key) or 0
    if expected_version == current_version:
        return record(
            entity, current, new, entity_type=entity_type, base_version=expected_version,
            version=current_version + 1, source_ts=source_ts, attrs=attrs, writer=writer,
        )
    name, actor, priority = _who(writer, None)
    current_writer = last_writer_of(current, s.meta_key)
    rejected: list[dict[str, Any]] = []
    try:
        changes = diff(
            plain(current, s.meta_key) or {}, plain(new, s.meta_key) or {}, rules=s.rules
        )
        conflict_attrs = {
            **(attrs or {}),
            "rejected": True,
            "current_version": current_version,
            "current_writer": current_writer,
        }
        rejected = changes and s.enabled and emit(build_events(
            str(entity), changes, writer=name, actor=actor, entity_type=entity_type,
            base_version=expected_version, source_ts=source_ts, priority=priority,
            attrs=conflict_attrs,
        ))
    except Exception as exc:
        health.dropped("instrumentation", exc)
    raise ConflictError(
        str(entity), writer=name, expected_version=expected_version,
        current_version=current_version, current_writer=current_writer, events=rejected or [],
    )


# --- the writer-priority rule -----------------------------------------------------------------

_loaded_config: Config | None = None


def _config() -> Config:
    global _loaded_config
    configured = settings.current().config
    if configured is not None:
        return configured
    if _loaded_config is None:
        try:
            _loaded_config = load_config()
        except Exception as exc:  # a bad audit.toml must not stop the service: defaults
            health.dropped("config", exc, 0)
            _loaded_config = Config()
    return _loaded_config


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    raise TypeError(f"not a timestamp: {value!r}")


def priority_allows(
    writer: str,
    last_writer: str | None,
    *,
    last_at: Any = None,
    now: Any = None,
    priority: int | None = None,
    last_priority: int | None = None,
    config: Config | None = None,
) -> bool:
    """May ``writer`` overwrite a field ``last_writer`` wrote at ``last_at``?

    No when the last writer has a higher priority and wrote less than ``priority.window``
    seconds ago (``last_at`` unknown: treated as recent). Equal priorities may overwrite
    each other. Priorities come from ``config`` (default: ``audit.configure(config=…)``,
    else ``audit.toml``, else the defaults user 100 > workflow 80 > instantiation 60 >
    polling_sync 40); ``priority``/``last_priority`` override them. Timestamps: datetime,
    RFC 3339 text or epoch seconds; ``now`` defaults to the clock.
    """
    if last_writer is None or last_writer == writer:
        return True
    cfg = config or _config()
    mine = priority if priority is not None else cfg.priority_of(writer)
    theirs = last_priority if last_priority is not None else cfg.priority_of(last_writer)
    if mine >= theirs:
        return True
    last = _seconds(last_at)
    if last is None:
        return False
    current = _seconds(now) if now is not None else datetime.now(UTC).timestamp()
    return current - last >= cfg.priority_window_s


def _covers(path: str, field: str) -> bool:
    """Whether ``path`` is ``field`` or lies above it (``nodes`` covers ``nodes[a].data``)."""
    return path == field or field.startswith((path + ".", path + "["))


def field_writer(doc: Any, field: str, *, meta_key: str | None = None) -> tuple[str, str] | None:
    """``(writer, at)`` of the latest per-field stamp covering ``field`` (itself, a parent
    or a child path), from a document stamped with ``audit.configure(field_stamps=True)``."""
    return _latest_stamp(field_stamps(doc, meta_key or settings.current().meta_key), field)


def _latest_stamp(stamps: Mapping[str, Any], field: str) -> tuple[str, str] | None:
    best: tuple[str, str] | None = None
    for path, st in stamps.items():
        if _covers(path, field) or _covers(field, path):
            by, at = st.get("by"), st.get("at")
            if by is not None and (best is None or str(at) > str(best[1])):
                best = (by, at)
    return best


def merge_by_priority(
    stored: Mapping[str, Any] | None,
    incoming: dict[str, Any],
    *,
    writer: str | None = None,
    now: Any = None,
    config: Config | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Apply the priority rule to a whole-document save: keep the stored value of every field the
    writer may not overwrite (see `priority_allows`), per the stored per-field stamps.

    Returns ``(document to save, refused field paths)``; ``incoming`` is changed in place.
    Needs ``audit.configure(field_stamps=True)`` so documents carry per-field stamps; dict
    documents only.
    """
    s = settings.current()
    name = writer or _who(None, None)[0]
    stamps = field_stamps(stored, s.meta_key)
    if not stamps:  # no field has a writer on record: every change is allowed
        return incoming, []
    refused: list[tuple[str, str, Any]] = []
    for field, change, old, _new in diff(stored, incoming, rules=s.rules):
        last = _latest_stamp(stamps, field)
        if last is None:
            continue
        if not priority_allows(name, last[0], last_at=last[1], now=now, config=config):
            refused.append((field, change, old))
    # Restore so that no step shifts the position another step relies on: changed values
    # in place, then removed list items back in ascending order, then added items out in
    # descending order (elements of keyed lists are found by key, wherever they stand).
    def order(r: tuple[str, str, Any]) -> tuple:
        field, change, _old = r
        rank = {"changed": 0, "removed": 1, "added": 2}[change]
        key = _sort_key(field)
        return (rank, tuple(_negate(k) for k in key) if change == "added" else key)

    for field, _change, old in sorted(refused, key=order):
        _restore(incoming, field, old, s)
    return incoming, [r[0] for r in refused]


def _negate(part: tuple) -> tuple:
    kind, number, text = part
    return (kind, -number, text)


def _sort_key(field: str) -> tuple:
    return tuple(
        (2, 0, step) if by_key else (0, int(step), "") if step.isdigit() else (1, 0, step)
        for _, by_key, step in split_path(field)
    )


def _restore(doc: Any, field: str, old: Any, s: settings.Settings) -> None:
    """Put ``old`` back at ``field`` (``MISSING``: remove what the write added)."""
    target, last = locate(doc, field, s.rules)
    if isinstance(target, list):
        if old is MISSING:
            if last < len(target):
                del target[last]
        elif last < len(target):
            target[last] = old
        else:
            target.append(old)
    elif old is MISSING:
        target.pop(last, None)
    else:
        target[last] = old
