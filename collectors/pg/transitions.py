"""One captured row change as transition events (docs/contract.md §1 and §6).

The trigger (sql/capture.sql) stores the row before and after as JSON objects whose keys are
the columns; here they are diffed with the instrumentation's own `audit.diff`, so a jsonb
column's inside gets the paths of docs/diff.md (``preview_json.nodes[block-A].data``), keyed
lists and exclude patterns included, under the settings of the installation the row change
was captured under.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

from audit.diff import MISSING, Change, Rules, diff
from audit.event import RFC3339_PATTERN, TRANSITION

_RFC3339 = re.compile(RFC3339_PATTERN)
# What counts as an integer version: a JSON integer, or text holding one (a version column
# altered to text since install). Never an error: a row change is always recorded.
_INTEGER_TEXT = re.compile(r"\s*-?[0-9]{1,18}\s*")


@dataclass(frozen=True)
class Installation:
    """The settings one `audit pg install` stored (conflict_audit.installations)."""

    id: int
    table: str
    entity_prefix: str
    entity_type: str
    key_columns: tuple[str, ...]
    version_column: str | None
    exclude: tuple[str, ...]  # docs/diff.md patterns over column.path, stamps included
    list_keys: tuple[tuple[str, str | None], ...]

    @cached_property
    def rules(self) -> Rules:
        # The row is the document, its columns the top-level keys: a jsonb column's stamp
        # (`column._meta`) is among the exclude patterns, a column named `_meta` is a column.
        return Rules(dict(self.list_keys), self.exclude, stamp_key=None)

    @cached_property
    def identity(self) -> frozenset[str]:
        """The columns that name the entity and its version: not fields."""
        return frozenset((*self.key_columns, *filter(None, [self.version_column])))


class RowChange(NamedTuple):
    """A conflict_audit.row_changes row as sql/pull.sql reads it."""

    id: int
    xid: str
    ts: str  # RFC 3339, UTC
    installation: int
    op: str  # INSERT | UPDATE | DELETE
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    writer: str
    actor: str | None
    source_ts: str | None
    base_version: str | None


def transitions(change: RowChange, setup: Installation, source: str) -> list[dict[str, Any]]:
    """The events of one row change; ``source`` names the database (conflict_audit.meta).

    An update that changes a key ends one entity and begins another, in one write. With a
    version column, an update that changes no captured field and does not move the version
    forward is a rewrite (`_rewrite`).
    """
    before, after = change.old, change.new
    before_key = None if before is None else key_text(before, setup.key_columns)
    after_key = None if after is None else key_text(after, setup.key_columns)
    before_doc, after_doc = _fields(before, setup), _fields(after, setup)
    common: dict[str, Any] = {
        "event": TRANSITION,
        "ts": change.ts,
        "entity_type": setup.entity_type,
        "writer": change.writer,
        "write_id": f"pg-{source}-{change.xid}.{change.id}",
    }
    if change.actor is not None:
        common["actor"] = change.actor
    attrs: dict[str, Any] = {}
    invalid: dict[str, str] = {}
    if setup.version_column is not None:
        _versions(change, setup.version_column, common, invalid)
    if change.source_ts is not None:
        if _RFC3339.fullmatch(change.source_ts):
            common["source_ts"] = change.source_ts
        else:
            invalid["audit.source_ts"] = change.source_ts
    if invalid:
        attrs["invalid_settings"] = invalid

    new_key = before_key is not None and after_key is not None and before_key != after_key
    if new_key:
        parts = [(before_key, before_doc, {}), (after_key, {}, after_doc)]
    else:
        parts = [(before_key if after_key is None else after_key, before_doc, after_doc)]
    found = [(key, diff(a, b, rules=setup.rules)) for key, a, b in parts]
    if not any(changes for _, changes in found) and not new_key and _is_rewrite(change, setup):
        found = [(after_key, _rewrite(after_doc, setup.rules))]
        attrs["rewrite"] = True
    attrs["pg"] = {"op": change.op, "xid": change.xid, "capture_id": change.id}

    events = []
    for key, changes in found:
        # Sorted: the n in an event id must not depend on the order the diff walks in.
        for field, kind, old, new in sorted(changes, key=_field):
            event = {**common, "event_id": f"pg-{source}-{change.id}-{len(events)}",
                     "entity": f"{setup.entity_prefix}:{key}", "field": field, "change": kind}
            if old is not MISSING:
                event["old"] = old
            if new is not MISSING:
                event["new"] = new
            event["attrs"] = attrs
            events.append(event)
    return events


def key_text(row: Mapping[str, Any], key_columns: tuple[str, ...]) -> str:
    """The entity key of a row: its key columns' values joined by ``,``, each as PostgreSQL's
    ``->>`` writes it (a NULL, from a nullable --key column, as nothing)."""
    return ",".join(_text(row.get(column)) for column in key_columns)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _fields(row: Mapping[str, Any] | None, setup: Installation) -> dict[str, Any]:
    if row is None:
        return {}
    return {column: value for column, value in row.items() if column not in setup.identity}


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        return int(value)
    return None


def _old_version(change: RowChange, column: str) -> int | None:
    return None if change.old is None else _integer(change.old.get(column))


def _versions(change: RowChange, column: str, event: dict[str, Any],
              invalid: dict[str, str]) -> None:
    """`version`: the column's new value (a delete is one more write: the old one + 1);
    `base_version`: audit.base_version when set, else version - 1."""
    if change.new is not None:
        version = _integer(change.new.get(column))
    else:
        old = _old_version(change, column)
        version = None if old is None else old + 1
    base = _integer(change.base_version)
    if base is None and change.base_version is not None:
        invalid["audit.base_version"] = change.base_version
    if base is None and version is not None:
        base = version - 1
    if version is not None:
        event["version"] = version
    if base is not None:
        event["base_version"] = base


def _is_rewrite(change: RowChange, setup: Installation) -> bool:
    """An update whose version does not move forward."""
    if change.op != "UPDATE" or setup.version_column is None:
        return False
    old = _old_version(change, setup.version_column)
    new = _integer((change.new or {}).get(setup.version_column))
    return old is not None and new is not None and new <= old


def _rewrite(row: dict[str, Any], rules: Rules) -> list[Change]:
    """The row written as it was: one `changed` event per captured column with old = new.

    That is what the read-modify-write race looks like from inside the database: two
    writers read version 4 with value 10, both write value 11 and version 5, and the second
    finds the row already so. Recorded this way, `lost_update` pairs it with the write it
    overwrote unseen. A trigger cannot know which columns the statement meant, so these
    events are per column, jsonb columns whole (less their excluded parts, as the diff
    carries an added value).
    """
    return [(field, "changed", value, value) for field, _, _, value in diff({}, row, rules=rules)]


def _field(change: Change) -> str:
    return change[0]
