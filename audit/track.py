"""Tracking writes: one contract event per changed field, and the stamp on the document.

Three ways in, one path out:

- ``@tracked(...)`` for read-modify-write functions (sync or async) that take a document
  and mutate or return it;
- ``with tracking(doc, ...)`` for code that is not a function;
- ``record(entity, before, after)`` for stores: diff what is stored against what is about
  to be stored, which is what catches a whole-document save reverting another writer's field.

All of them fail open: if diffing, stamping or emitting goes wrong the service's write still
happens (counted in ``audit.stats()``); only the service's own exceptions propagate.
Instrument each write once, in the service or in the store: both would report it twice.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import itertools
import os
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar

import orjson

from audit import health, settings
from audit.diff import MISSING, SCALARS, Change, diff, patch
from audit.emit import emit
from audit.event import TRANSITION
from audit.leaf_diff import leaf_change
from audit.stamp import (
    clone,
    is_document,
    plain,
    snapshot,
    stamp,
    version_of,
)
from audit.timestamps import as_timestamp, now
from audit.writer import current_writer

F = TypeVar("F", bound=Callable[..., Any])

# --- ids: a random per-process prefix and a counter, ~20x cheaper than uuid4 ---------------

# The counter starts at 2**64 so that hex() writes it as "0x1" and 16 digits: the digits
# alone are the 16-digit counter, without a format spec (a third of the cost).
_counter = itertools.count(1 << 64)
_prefix = os.urandom(8).hex()


def _reseed() -> None:
    global _prefix, _counter
    _prefix = os.urandom(8).hex()
    _counter = itertools.count(1 << 64)


os.register_at_fork(after_in_child=_reseed)  # a forked child must not repeat its parent's ids


def new_id() -> str:
    """A 32-hex-digit id unique across processes (random prefix) and within one (counter)."""
    return _prefix + hex(next(_counter))[3:]


# --- annotations of the write in progress ---------------------------------------------------

_annotations: ContextVar[dict[str, Any] | None] = ContextVar("audit_annotations", default=None)


def annotate(*, source_ts: Any = None, attrs: Mapping[str, Any] | None = None) -> None:
    """Inside a tracked function or ``tracking`` block: add to the write being tracked.

    ``source_ts``: when the data being written was produced at its source (an SSE event's
    ``updated_at``): a datetime, epoch seconds or ISO 8601 text, UTC when it has no offset;
    ``attrs``: merged into the events' ``attrs``. Outside one: no effect.
    """
    current = _annotations.get()
    if current is None:
        return
    if source_ts is not None:
        current["source_ts"] = source_ts
    if attrs:
        current.setdefault("attrs", {}).update(attrs)


# --- building events -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class About:
    """Who and what of a write, as its caller describes it; None: not given, so the
    `audit.writer` scope and the settings decide (`_who`), or the event goes without.

    ``source_ts``: a timestamp (see `annotate`); for ``@tracked`` also a callable on the
    document after the write. ``write_id``: default a new id.
    """

    entity_type: str | None = None
    writer: str | None = None
    actor: str | None = None
    source_ts: Any = None
    attrs: Mapping[str, Any] | None = None
    write_id: str | None = None


def build_events(
    entity: str,
    changes: list[Change],
    *,
    writer: str,
    actor: str | None = None,
    entity_type: str | None = None,
    write_id: str | None = None,
    base_version: int | None = None,
    version: int | None = None,
    source_ts: Any = None,
    priority: int | None = None,
    attrs: Mapping[str, Any] | None = None,
    ts: str | None = None,
) -> list[dict[str, Any]]:
    """Contract events (docs/contract.md §1) for ``changes``, sharing one ``write_id``."""
    ts = ts or now()
    write_id = write_id or new_id()
    if source_ts is not None:
        source_ts = as_timestamp(source_ts)
    attrs = dict(attrs) if attrs else None
    events = []
    for field, change, old, new in changes:
        event: dict[str, Any] = {
            "event": TRANSITION, "event_id": new_id(), "ts": ts, "entity": entity,
        }
        if entity_type is not None:
            event["entity_type"] = entity_type
        event["field"] = field
        event["change"] = change
        if old is not MISSING:
            event["old"] = old if type(old) in SCALARS else clone(old)
        if new is not MISSING:
            event["new"] = new if type(new) in SCALARS else clone(new)
        event["writer"] = writer
        if actor is not None:
            event["actor"] = actor
        event["write_id"] = write_id
        if base_version is not None:
            event["base_version"] = base_version
        if version is not None:
            event["version"] = version
        if source_ts is not None:
            event["source_ts"] = source_ts
        if priority is not None:
            event["priority"] = priority
        if attrs:
            event["attrs"] = attrs
        events.append(event)
    return events


def _who(writer: str | None, actor: str | None) -> tuple[str, str | None, int | None]:
    """(writer, actor, priority): given explicitly, else the `audit.writer` scope, else the
    configured default writer."""
    if writer is not None:
        return writer, actor, None
    scope = current_writer()
    if scope is not None:
        return scope.name, actor if actor is not None else scope.actor, scope.priority
    return settings.current().writer, actor, None


def _write(
    s: settings.Settings,
    entity: Any,
    about: About,
    before: Any,
    after_plain: Any,
    after_doc: Any,
    *,
    base_version: int | None,
    version: int | None,
    changes: list[Change] | None = None,
    stamp_doc: bool = True,
    quiet: bool = False,
) -> list[dict[str, Any]]:
    """Diff (unless the caller did), stamp, emit: the one path every tracked write takes.

    A version is claimed only for a document that has one (``base_version``), where the
    caller gives it, or with ``configure(versions="always")``: a copy rebuilt without its
    stamp would otherwise claim version 1 on every write, and two correct writes in a row
    would look like a fork (``version_conflict``).
    ``quiet``: stamp only (instrumentation switched off, but a store's versions must still
    move on, or its compare-and-swap would stop protecting anything)."""
    if changes is None:
        changes = diff(before, after_plain, rules=s.rules)
    if not changes:
        return []
    name, actor, priority = _who(about.writer, about.actor)
    if version is None and (base_version is not None or s.versions == "always"):
        version = (base_version or 0) + 1
    write_id = about.write_id or new_id()
    ts = now()
    if stamp_doc and after_doc is not None:
        try:
            stamp(
                after_doc, s.meta_key, writer=name, at=ts, version=version, write_id=write_id,
                fields=[c[0] for c in changes] if s.field_stamps else None,
            )
        except Exception as exc:
            health.dropped("stamp", exc, 0)
    if quiet:
        return []
    events = build_events(
        str(entity), changes, writer=name, actor=actor, entity_type=about.entity_type,
        write_id=write_id, base_version=base_version, version=version,
        source_ts=about.source_ts, priority=priority, attrs=about.attrs, ts=ts,
    )
    return emit(events)


def record(
    entity: Any,
    before: Any,
    after: Any,
    *,
    entity_type: str | None = None,
    base_version: int | None = None,
    version: int | None = None,
    source_ts: Any = None,
    write_id: str | None = None,
    attrs: Mapping[str, Any] | None = None,
    writer: str | None = None,
    actor: str | None = None,
    stamp: bool = True,
) -> list[dict[str, Any]]:
    """Store side: record the write that replaces ``before`` (stored; None: new) by ``after``.

    Defaults fit a store that saves whole documents: ``base_version`` is the version in
    ``after``'s stamp (the version its writer read), ``version`` the stored version + 1 (or
    ``base_version`` + 1), and ``after`` is stamped with it before the store saves it; where
    neither document has a version, none is claimed (unless ``configure(versions="always")``).
    The writer is the current ``audit.writer`` scope; ``source_ts`` as for `annotate`.
    Returns the events (empty if nothing changed); never raises on account of the
    instrumentation. With the instrumentation switched off (``configure(enabled=False)``)
    it still stamps, and emits nothing.
    """
    s = settings.current()
    try:
        if base_version is None:
            base_version = version_of(after, s.meta_key)
        if version is None:
            stored = version_of(before, s.meta_key)
            if stored is not None:
                version = stored + 1
        old, new = plain(before, s.meta_key), plain(after, s.meta_key)
        if old is None and isinstance(new, Mapping):
            old = {}  # a new entity: its fields are added
        elif new is None and isinstance(old, Mapping):
            new = {}  # a deleted entity: its fields are removed
        about = About(entity_type, writer, actor, source_ts, attrs, write_id)
        return _write(
            s, entity, about, old, new, after, base_version=base_version, version=version,
            stamp_doc=stamp, quiet=not s.enabled,
        )
    except Exception as exc:
        health.dropped("instrumentation", exc)
        return []


# --- the decorator and the context manager ---------------------------------------------------


def _entity_of(doc: Any, entity: Any) -> Any:
    if entity is None:
        return doc["id"] if type(doc) is dict or isinstance(doc, Mapping) else doc.id
    if callable(entity):
        return entity(doc)
    return entity


def _json_bytes(doc: Any) -> bytes | None:
    """The document as JSON, if orjson can write it natively (dict, dataclass); else None.

    No ``default``: a value orjson does not know makes the document go the slow way, with a
    real copy, instead of being compared as a lossy text.
    """
    if type(doc) is dict or isinstance(doc, dict) or (
        dataclasses.is_dataclass(doc) and not isinstance(doc, type)
    ):
        try:
            return orjson.dumps(doc)
        except (TypeError, orjson.JSONEncodeError):
            return None
    return None


class _Tracker:
    """One tracked write: state taken before it, finished after it.

    The state before is kept as JSON text when it can be (~1 us, against ~12 us for a deep
    copy): if the text after is the same, nothing changed and nothing more is done; if one
    scalar changed, the two texts say which (audit/leaf_diff.py); else the text is parsed
    back for the diff.
    """

    __slots__ = ("s", "doc", "entity", "about", "before", "before_json", "base_version",
                 "annotations", "token", "events")

    def __init__(self, s: settings.Settings, doc: Any, entity: Any, about: About):
        self.s = s
        self.doc = doc
        self.about = about
        self.events: list[dict[str, Any]] = []
        self.annotations: dict[str, Any] = {}
        self.before = None
        try:
            self.entity = _entity_of(doc, entity)
            self.base_version = version_of(doc, s.meta_key)
            self.before_json = _json_bytes(doc)
            if self.before_json is None:
                self.before = snapshot(doc, s.meta_key)
        except Exception as exc:
            health.dropped("instrumentation", exc)
            self.doc = None  # nothing to finish
        self.token = _annotations.set(self.annotations)

    def finish(self, result: Any) -> None:
        _annotations.reset(self.token)
        if self.doc is None:
            return
        try:
            after = result if result is not None and is_document(result) else self.doc
            meta_key = self.s.meta_key
            if self.before_json is not None:
                after_json = _json_bytes(after)
                if after_json == self.before_json:
                    return  # the same JSON: nothing changed
                before = None
                if after_json is None:  # now holding what orjson cannot write: the exact diff
                    before = orjson.loads(self.before_json)
                    after_plain, changes = plain(after, meta_key), None
                else:
                    if type(after) is dict or isinstance(after, Mapping):
                        after_plain = after
                    else:
                        after_plain = orjson.loads(after_json)  # a dataclass, as data
                    changes = leaf_change(self.before_json, after_json, after_plain, self.s.rules)
                    if changes is None:  # not one scalar changed in place: the full diff
                        changes = self._fast_diff(
                            orjson.loads(self.before_json), after_plain, after_json
                        )
            else:
                before = self.before
                after_plain = plain(after, meta_key)
                changes = None
            about = self.about
            if self.annotations or about.source_ts is not None:
                about = self._annotated(after)
            self.events = _write(
                self.s, self.entity, about, before, after_plain, after,
                base_version=self.base_version, version=None, changes=changes,
            )
        except Exception as exc:
            health.dropped("instrumentation", exc)

    def _annotated(self, after: Any) -> About:
        """`about` with what `annotate` added inside the write, and ``source_ts`` computed
        from the document after it."""
        about, annotations = self.about, self.annotations
        source_ts = annotations.get("source_ts", None)
        if source_ts is None and about.source_ts is not None:
            source_ts = about.source_ts(after) if callable(about.source_ts) else about.source_ts
        attrs = about.attrs
        if "attrs" in annotations:
            attrs = {**(attrs or {}), **annotations["attrs"]}
        return dataclasses.replace(about, source_ts=source_ts, attrs=attrs)

    def _fast_diff(self, before: Any, after: Any, after_json: bytes) -> list[Change]:
        """The diff, skipping unchanged containers on ``==`` alone, which is exact for JSON
        data except that it calls ``True == 1``. Where booleans occur, the result is checked
        instead: patched with the changes found, the state before must give the JSON text
        after. If it does not (a boolean hidden in an "equal" container, or keys in another
        order), the exact diff runs."""
        rules = self.s.rules
        changes = diff(before, after, rules=rules, booleans=False)
        before_json = self.before_json
        if not (
            b"true" in before_json or b"false" in before_json
            or b"true" in after_json or b"false" in after_json
        ):
            return changes
        # A move in a keyed list or a change of an excluded field also fails this check:
        # the exact diff then runs, correct and only slower.
        spliced = _spliced(before_json, changes)
        if spliced is not None:
            if spliced == after_json:
                return changes
        else:
            try:
                if orjson.dumps(patch(before, changes, rules)) == after_json:
                    return changes
            except Exception:  # a path that does not resolve (a key with a dot): be exact
                pass
        return diff(orjson.loads(self.before_json), after, rules=rules)

    def abandon(self) -> None:
        _annotations.reset(self.token)


def _spliced(before_json: bytes, changes: list[Change]) -> bytes | None:
    """The JSON text of the state before with ``changes`` applied, made from its text: each
    old value's text replaced by the new value's. That is the text of the patched state
    (`_Tracker._fast_diff`'s check) at a fraction of the cost of patching and writing it.

    Only for changes of scalars whose old text occurs once in ``before_json``: the field's
    own text is one of the occurrences, so a single one is the field's (a scalar is written
    the same wherever it stands). None where that does not hold: the caller patches.
    """
    spots = []
    for _field, kind, old, new in changes:
        if kind != "changed" or type(old) not in SCALARS or type(new) not in SCALARS:
            return None
        old_text = orjson.dumps(old)
        at = before_json.find(old_text)
        if at < 0 or before_json.rfind(old_text) != at:
            return None
        spots.append((at, at + len(old_text), orjson.dumps(new)))
    if len(spots) == 1:  # most writes change one field: no sort, no list of parts
        start, stop, new_text = spots[0]
        return before_json[:start] + new_text + before_json[stop:]
    spots.sort()
    parts, end = [], 0
    for start, stop, new_text in spots:
        if start < end:
            return None
        parts += (before_json[end:start], new_text)
        end = stop
    parts.append(before_json[end:])
    return b"".join(parts)


def _doc_locator(fn: Callable[..., Any], doc: int | str | None) -> Callable[[tuple, dict], Any]:
    """How to find the document among a call's arguments: by position or by name; default
    the first parameter that is not ``self``/``cls``."""
    params = list(inspect.signature(fn).parameters.values())
    if doc is None:
        doc = 1 if params and params[0].name in ("self", "cls") else 0
    if isinstance(doc, int):
        index = doc
        name = params[index].name if index < len(params) else None
    else:
        name = doc
        names = [p.name for p in params]
        index = names.index(name) if name in names else None

    def locate(args: tuple, kwargs: dict) -> Any:
        if index is not None and index < len(args):
            return args[index]
        if name is not None and name in kwargs:
            return kwargs[name]
        raise LookupError(f"no document argument {doc!r} in the call of {fn.__qualname__}")

    return locate


def tracked(
    fn: Callable[..., Any] | None = None,
    *,
    entity: Any = None,
    entity_type: str | None = None,
    doc: int | str | None = None,
    writer: str | None = None,
    source_ts: Any = None,
    attrs: Mapping[str, Any] | None = None,
) -> Any:
    """Track a read-modify-write function: ``@tracked(entity=lambda d: d["id"])``.

    The function (sync or async) takes a document (``doc``: which argument, by position or
    name; default the first that is not ``self``) and mutates it or returns a document.
    After it returns, each changed field becomes one event, and the document gets its stamp.
    ``entity``: a callable on the document, or a fixed id (default ``doc["id"]`` /
    ``doc.id``); ``source_ts``: a value, or a callable on the document after the write;
    ``writer`` overrides the ``audit.writer`` scope. If the function raises, nothing is
    recorded: the write did not happen.
    """
    if fn is None:
        return functools.partial(
            tracked, entity=entity, entity_type=entity_type, doc=doc, writer=writer,
            source_ts=source_ts, attrs=attrs,
        )
    locate = _doc_locator(fn, doc)

    about = About(entity_type, writer, None, source_ts, attrs)

    def start(args: tuple, kwargs: dict) -> _Tracker | None:
        s = settings.current()
        if not s.enabled:
            return None
        try:
            document = locate(args, kwargs)
        except Exception as exc:
            health.dropped("instrumentation", exc)
            return None
        return _Tracker(s, document, entity, about)

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def awrapper(*args: Any, **kwargs: Any) -> Any:
            tracker = start(args, kwargs)
            if tracker is None:
                return await fn(*args, **kwargs)
            try:
                result = await fn(*args, **kwargs)
            except BaseException:
                tracker.abandon()
                raise
            tracker.finish(result)
            return result

        return awrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        tracker = start(args, kwargs)
        if tracker is None:
            return fn(*args, **kwargs)
        try:
            result = fn(*args, **kwargs)
        except BaseException:
            tracker.abandon()
            raise
        tracker.finish(result)
        return result

    return wrapper


class tracking:  # noqa: N801 - used like a function: `with audit.tracking(doc):`
    """Track the changes made to ``doc`` inside a ``with`` block::

        with audit.tracking(block, entity="block-A", entity_type="block") as b:
            b["content"] = "x"

    The block must change the document in place. ``events`` holds what was emitted. If the
    block raises, nothing is recorded.
    """

    def __init__(
        self,
        doc: Any,
        *,
        entity: Any = None,
        entity_type: str | None = None,
        writer: str | None = None,
        source_ts: Any = None,
        attrs: Mapping[str, Any] | None = None,
    ):
        self._doc, self._entity = doc, entity
        self._about = About(entity_type, writer, None, source_ts, attrs)
        self._tracker: _Tracker | None = None
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Any:
        s = settings.current()
        if s.enabled:
            self._tracker = _Tracker(s, self._doc, self._entity, self._about)
        return self._doc

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        tracker, self._tracker = self._tracker, None
        if tracker is None:
            return
        if exc_type is not None:
            tracker.abandon()
            return
        tracker.finish(None)
        self.events = tracker.events
