"""Snapshot import: a history of saved documents becomes transition events (docs/contract.md §6).

Many teams already have the history, only not as events: a folder of saved workspaces, a
JSON Lines export of row versions. Each document is compared with the one before it of the
same entity by the instrumentation's own rules (`audit.diff`, docs/diff.md: keyed lists,
excluded paths) and the changes become contract events (`audit.track.build_events`). They
are stored through the ingest's `load_lines`, so they are validated and de-duplicated like
any ingested line; their ids are derived from the snapshots, so importing the same
snapshots again doubles nothing.

Documents of one entity are taken in time order: the ``ts_key`` value, else a timestamp in
the file name (``ws-1_2025-05-01T10-00-00Z.json``), else the order given. A document's
writer is the writer of every change it brings. The first document of an entity brings its
fields as ``added``, like a store's first save. ``splits`` make each element of a list an
entity of its own (``ws-1/block-A``), with the same patterns as the whole document.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson

from audit import exact_json, timestamps
from audit.diff import Rules, diff, element_path, key_text
from audit.emit import render
from audit.errors import AuditError
from audit.track import build_events
from collectors.sources import not_a_file_or_folder

SOURCE = "snapshots"  # the events' source in the store; each event names its file in attrs
PATTERNS = ("*.json", "*.jsonl", "*.ndjson")
JSON_LINES = (".jsonl", ".ndjson")
BATCH_LINES = 20_000

Progress = Callable[[int, int], None]  # (documents done, documents in all)


@dataclass(frozen=True)
class Split:
    """``--split nodes:id``: each element of the list at ``path`` is an entity of its own,
    named ``ID/ELEMENT_KEY`` by its ``key``."""

    path: str
    key: str

    @classmethod
    def parse(cls, spec: str) -> Split:
        path, sep, key = spec.rpartition(":")
        if not sep or not path or not key:
            raise AuditError(f"--split {spec}: expected LISTPATH:KEY, e.g. nodes:id")
        return cls(path, key)


@dataclass(frozen=True)
class Options:
    id_key: str = "id"
    entity_type: str | None = None
    splits: tuple[Split, ...] = ()
    writer: str | None = None  # every document's writer
    writer_key: str | None = None  # or the key that holds it
    ts_key: str | None = None
    exclude: tuple[str, ...] = ()
    list_keys: Mapping[str, str | None] | None = None

    def rules(self) -> Rules:
        """The diff rules; the keys that say who saved a document when are bookkeeping of
        the save, not data, and are left out like the stamp."""
        bookkeeping = [k for k in (self.ts_key, self.writer_key) if k]
        return Rules(self.list_keys, (*self.exclude, *bookkeeping))


@dataclass
class ImportSummary:
    files: int = 0
    documents: int = 0
    entities: int = 0  # split elements included
    writes: int = 0  # documents that changed something (a document is one write)
    events: int = 0
    ingested: int = 0
    duplicates: int = 0
    rejected: int = 0
    order: str = ""  # where the time order came from
    unknown_writers: int = 0  # documents without the writer key


@dataclass
class _Doc:
    """One document as read: where it came from, its entity and time; its JSON text is
    parsed again when its turn comes, which keeps a large import's memory small."""

    where: str  # the file, with the line (JSON Lines) or [index] (an array): errors and attrs
    file: str
    order: int
    entity: str
    raw: bytes
    ts: datetime | None = None
    ts_known: bool = False  # from the document or its file name, not made up
    writer: str | None = None


# --- reading -------------------------------------------------------------------------------------


def discover(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given; folders recursively (*.json, *.jsonl, *.ndjson), in natural order
    (snap-2 before snap-10)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = {p for pattern in PATTERNS for p in path.rglob(pattern) if p.is_file()}
            found.extend(sorted(files, key=_natural))
        elif path.is_file():
            found.append(path)
        else:
            raise not_a_file_or_folder(raw)
    return found


def _natural(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def _documents(path: Path) -> Iterator[tuple[str, bytes, Any]]:
    """(where, JSON text, value) of each document in a file: JSON Lines, or one JSON value
    (an array of documents is a list of them)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuditError(f"cannot read {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() not in JSON_LINES:
        try:
            value = exact_json.loads(data)
        except orjson.JSONDecodeError as exc:
            if data.count(b"\n") < 2:
                raise AuditError(f"{path}: not JSON ({exc})") from None
        else:  # one document, or an array of them
            if isinstance(value, list):
                for index, item in enumerate(value):
                    yield f"{path}[{index}]", exact_json.dumps(item), item
            else:
                yield str(path), data, value
            return
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield f"{path}:{number}", line, exact_json.loads(line)
        except orjson.JSONDecodeError as exc:
            raise AuditError(f"{path}:{number}: not JSON ({exc})") from None


def _lookup(doc: Mapping[str, Any], key: str) -> Any:
    """``doc[key]``, or the dotted path ``key`` through nested objects; None if absent."""
    if key in doc:
        return doc[key]
    value: Any = doc
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


# Timestamps people put in file names: 2025-05-01T10-00-00Z, 2025-05-01_10.00.00.123,
# 20250501T100000Z, 2025-05-01; or epoch seconds (10 digits) / milliseconds (13 digits).
_NAME_TS = re.compile(
    r"(?<!\d)(\d{4})(?:-(\d{2})-(\d{2})|(\d{2})(\d{2})(?=[T_ -]?\d{6}))"
    r"(?:[T_ -]?(\d{2})[:.\-]?(\d{2})(?:[:.\-]?(\d{2})(?:[.,](\d{1,6})\d*)?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?(?!\d)"
)
_EPOCH = re.compile(r"(?<!\d)(\d{13}|\d{10})(?!\d)")


def name_timestamp(name: str) -> datetime | None:
    """The time a file name carries, UTC when it says no offset; None without one."""
    for m in _NAME_TS.finditer(name):
        year, month, day, cmonth, cday, hour, minute, second, frac, zone = m.groups()
        try:
            ts = datetime(
                int(year), int(month or cmonth), int(day or cday), int(hour or 0),
                int(minute or 0), int(second or 0), int((frac or "0").ljust(6, "0")),
                tzinfo=UTC,
            )
        except ValueError:
            continue
        if zone and zone != "Z":
            zone = zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
            ts = datetime.fromisoformat(ts.replace(tzinfo=None).isoformat() + zone)
        return ts.astimezone(UTC)
    for m in _EPOCH.finditer(name):
        number = int(m.group(1))
        seconds = number / 1000 if len(m.group(1)) == 13 else number
        ts = datetime.fromtimestamp(seconds, UTC)
        if 2000 <= ts.year <= 2100:
            return ts
    return None


def value_timestamp(value: Any) -> datetime | None:
    """A document's time: ISO 8601 text (UTC without an offset) or epoch seconds or
    milliseconds; None if it is none of these."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
        except (ValueError, OverflowError, OSError):  # NaN, or beyond the calendar
            return None
    if isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return None


def read(paths: Iterable[str | os.PathLike], options: Options) -> tuple[list[_Doc], str, int]:
    """Every document, in the order its entity's history takes: (documents, where the
    order came from, files read)."""
    files = discover(paths)
    docs: list[_Doc] = []
    for path in files:
        for where, raw, value in _documents(path):
            if not isinstance(value, dict):
                raise AuditError(f"{where}: a document is a JSON object, not {_kind(value)}")
            entity = key_text(_lookup(value, options.id_key))
            if entity is None:
                raise AuditError(
                    f'{where}: no "{options.id_key}" key holding a string or an integer '
                    "(the entity id; see --id-key)"
                )
            doc = _Doc(where, str(path), len(docs), entity, raw)
            if options.ts_key:
                found = _lookup(value, options.ts_key)
                doc.ts = value_timestamp(found)
                if doc.ts is None:
                    what = "no" if found is None else f"{found!r} is no timestamp in"
                    raise AuditError(f'{where}: {what} "{options.ts_key}" (see --ts-key)')
                doc.ts_known = True
            if options.writer_key:
                who = _lookup(value, options.writer_key)
                doc.writer = who if isinstance(who, str) and who else None
            docs.append(doc)
    return docs, _order(docs, options), len(files)


def _order(docs: list[_Doc], options: Options) -> str:
    """Give each document its time and sort them; says where the order came from."""
    if options.ts_key:
        how = f'the documents\' "{options.ts_key}"'
    else:
        named = {file: name_timestamp(Path(file).name) for file in {d.file for d in docs}}
        if docs and all(ts is not None for ts in named.values()):
            for doc in docs:
                doc.ts, doc.ts_known = named[doc.file], True
            how = "the timestamps in the file names"
        else:
            # No time anywhere: the order given, at the files' modification times (made
            # non-decreasing, or the store's time order would undo the order given).
            mtimes = {f: datetime.fromtimestamp(os.stat(f).st_mtime, UTC) for f in named}
            latest = datetime.fromtimestamp(0, UTC)
            for doc in docs:
                latest = doc.ts = max(latest, mtimes[doc.file])
            how = "the order given (no --ts-key, no timestamps in the file names)"
    docs.sort(key=lambda d: (d.ts, d.order))
    return how


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", type(None): "null", bool: "a boolean"}.get(
        type(value), "a number"
    )


# --- from documents to events --------------------------------------------------------------------


@dataclass
class _Seen:
    """What the last document of an entity held: its parts by entity, and where it was."""

    parts: dict[str, tuple[str | None, Any, str]]
    identity: str
    where: str


def _parts(doc: dict[str, Any], entity: str, options: Options, where: str) -> dict[str, Any]:
    """The entities one document holds: itself (without its split lists) and each element
    of each split list, as ``{entity: (entity_type, value, prefix for the patterns)}``."""
    parts: dict[str, Any] = {}
    whole = dict(doc)
    for split in options.splits:
        *parents, last = split.path.split(".")
        holder: Any = whole
        for part in parents:  # copy the objects on the way, so the document stays whole
            if not isinstance(holder.get(part), dict):
                holder = None
                break
            holder[part] = dict(holder[part])
            holder = holder[part]
        items = holder.pop(last, None) if isinstance(holder, dict) else None
        if items is None:
            continue
        if not isinstance(items, list):
            raise AuditError(f'{where}: "{split.path}" is not a list (--split {split.path}:'
                             f"{split.key})")
        for item in items:
            key = key_text(item.get(split.key)) if isinstance(item, dict) else None
            if key is None:
                raise AuditError(
                    f'{where}: an element of "{split.path}" has no "{split.key}" holding a '
                    f"string or an integer (--split {split.path}:{split.key})"
                )
            name = f"{entity}/{key}"
            if name in parts:
                raise AuditError(f'{where}: "{key}" twice in "{split.path}" (entity {name})')
            parts[name] = (split.path, item, element_path(split.path, key))
    parts[entity] = (options.entity_type, whole, "")
    return parts


def _identity(doc: _Doc, ordinal: int, canonical: bytes) -> str:
    """What names a snapshot across imports: its entity, its time when the document or
    file name gives it (else its place in the entity's history), and its content."""
    when = doc.ts.isoformat() if doc.ts_known and doc.ts else f"#{ordinal}"
    return f"{doc.entity}|{when}|{hashlib.sha256(canonical).hexdigest()[:32]}"


def _event_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def transitions(
    docs: list[_Doc],
    options: Options,
    summary: ImportSummary | None = None,
    progress: Progress | None = None,
) -> Iterator[dict[str, Any]]:
    """The events of ``docs`` (in history order, from `read`), in that order."""
    summary = summary if summary is not None else ImportSummary()
    rules = options.rules()
    seen: dict[str, _Seen] = {}
    ordinals: dict[str, int] = {}
    entities: set[str] = set()
    for done, doc in enumerate(docs, 1):
        value = exact_json.loads(doc.raw)
        canonical = exact_json.dumps(value, option=orjson.OPT_SORT_KEYS)
        ordinal = ordinals[doc.entity] = ordinals.get(doc.entity, 0) + 1
        identity = _identity(doc, ordinal, canonical)
        parts = _parts(value, doc.entity, options, doc.where)
        entities.update(parts)
        before = seen.get(doc.entity)
        previous = before.parts if before else {}
        since = before.identity if before else ""
        writer = doc.writer or options.writer or "unknown"
        if options.writer_key and doc.writer is None:
            summary.unknown_writers += 1
        attrs = {"snapshot": doc.where}
        if before:
            attrs["previous_snapshot"] = before.where
        write_id = _event_id(doc.entity, since, identity)
        changed = False
        for entity in [*previous, *(e for e in parts if e not in previous)]:
            entity_type, old, prefix = previous.get(entity, (None, {}, ""))
            entity_type, new, prefix = parts.get(entity, (entity_type, {}, prefix))
            changes = diff(old, new, rules=rules, prefix=prefix)
            if not changes:
                continue
            changed = True
            events = build_events(
                entity, changes, writer=writer, entity_type=entity_type, write_id=write_id,
                ts=timestamps.from_datetime(doc.ts) if doc.ts else None, attrs=attrs,
            )
            for event in events:
                event["event_id"] = _event_id(
                    entity, event["field"], event["change"], since, identity
                )
            summary.events += len(events)
            yield from events
        summary.writes += changed
        seen[doc.entity] = _Seen(parts, identity, doc.where)
        if progress:
            progress(done, len(docs))
    summary.entities = len(entities)


# --- storing -------------------------------------------------------------------------------------


def import_snapshots(
    con: duckdb.DuckDBPyConnection,
    paths: Iterable[str | os.PathLike],
    options: Options,
    *,
    progress: Progress | None = None,
) -> ImportSummary:
    """Read the snapshots, turn them into events, store them like `audit ingest` does."""
    from collectors.ingest import load_lines  # numpy and pyarrow: only where events are stored

    docs, order, files = read(paths, options)
    summary = ImportSummary(files=files, documents=len(docs), order=order)
    batch: list[bytes] = []

    def store() -> None:
        stored = load_lines(con, batch, SOURCE)
        summary.ingested += stored.ingested
        summary.duplicates += stored.duplicates
        summary.rejected += stored.rejected
        batch.clear()

    for event in transitions(docs, options, summary, progress):
        batch.append(render(event))
        if len(batch) >= BATCH_LINES:
            store()
    if batch:
        store()
    return summary

