"""Field-level diff: which fields of a document one write changed, as contract paths.

A change is ``(field, change, old, new)``: ``field`` a dotted path with list indexes as
numbers (``indexingList.0.status``), ``$`` for the value as a whole; ``change`` one of
``changed``/``added``/``removed``; ``old``/``new`` the values, ``MISSING`` when absent.

JSON semantics: dict keys are added or removed, lists are compared index by index (a longer
list has ``items.3`` added), numbers compare by value (``1 == 1.0``) but booleans are not
numbers. JSON-like data (dict, list, tuple, str, int, float, bool, None) goes through a
hand-written walk (~100x faster than DeepDiff, which is what makes leaving the
instrumentation on affordable); any other value (sets, custom objects) is handed to DeepDiff.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()
ROOT: Final = "$"

Change = tuple[str, str, Any, Any]

SCALARS: Final = frozenset((str, int, float, bool, type(None)))  # compared, copied, as they are
_NUMBERS: Final = frozenset((int, float))
_CONTAINERS: Final = frozenset((dict, list, tuple))

# Paths are built as (parent, key) pairs and turned into text only for a reported change:
# most of a document is unchanged, and formatting every path would cost more than the walk.
Path = tuple[Any, Any] | None


def diff(
    old: Any,
    new: Any,
    *,
    exclude: frozenset[str] | set[str] = frozenset(),
    booleans: bool = True,
) -> list[Change]:
    """The changes that turn ``old`` into ``new``; top-level keys in ``exclude`` are ignored.

    ``booleans=False`` promises that neither side holds a boolean, which lets unchanged
    containers be skipped on ``==`` alone (see `_same`).

    >>> diff({"a": 1, "l": [1]}, {"a": 2, "l": [1, 5]})
    [('a', 'changed', 1, 2), ('l.1', 'added', MISSING, 5)]
    """
    out: list[Change] = []
    if (type(old) is dict or isinstance(old, Mapping)) and (
        type(new) is dict or isinstance(new, Mapping)
    ):
        _dicts(old, new, None, out, exclude or None, booleans)
    else:
        _walk(old, new, None, out, booleans)
    return out


def patch(doc: Any, changes: list[Change]) -> Any:
    """Apply ``changes`` (from `diff`) to ``doc`` in place; returns the patched value (a
    change of ``$`` replaces it). Removed list items go last to first, so indexes hold."""
    removals = []
    for field, change, _old, new in changes:
        if field == ROOT:
            doc = new
        elif change == "removed":
            removals.append(field)
        else:
            parent, key = locate(doc, field)
            if isinstance(parent, list) and key == len(parent):
                parent.append(new)
            else:
                parent[key] = new
    for field in reversed(removals):
        parent, key = locate(doc, field)
        del parent[key]
    return doc


def locate(doc: Any, field: str) -> tuple[Any, Any]:
    """The container holding a dotted ``field`` and its key there (an int in a list)."""
    parent = doc
    parts = field.split(".")
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    return parent, int(last) if isinstance(parent, list) else last


def text(path: Path) -> str:
    """``(((None, "a"), 0), "b")`` -> ``"a.0.b"``; the root is ``$``."""
    parts = []
    while path is not None:
        path, key = path
        parts.append(str(key))
    return ".".join(reversed(parts)) if parts else ROOT


def json_equal(a: Any, b: Any) -> bool:
    """Same JSON text (without a ``default``: values orjson does not know are unequal)."""
    try:
        return orjson.dumps(a) == orjson.dumps(b)
    except (TypeError, orjson.JSONEncodeError):
        return False


def _same(a: Any, b: Any, booleans: bool) -> bool:
    """Whether two containers are certainly equal as JSON, without walking them.

    ``==`` runs in C at a fraction of the walk's cost, and for JSON data it only lies about
    booleans (``True == 1``); where booleans may occur the JSON text settles it.
    """
    return _equal_c(a, b) and (not booleans or json_equal(a, b))


def _walk(a: Any, b: Any, path: Path, out: list[Change], booleans: bool) -> None:
    ta = type(a)
    tb = type(b)
    if ta is tb:
        if ta in SCALARS:
            if a != b or a != a:  # NaN is never equal to itself: report it
                out.append((text(path), "changed", a, b))
            return
        if ta is dict:
            if not _same(a, b, booleans):
                _dicts(a, b, path, out, None, booleans)
            return
        if ta is list or ta is tuple:
            if not _same(a, b, booleans):
                _lists(a, b, path, out, booleans)
            return
    elif ta in SCALARS and tb in SCALARS:
        # 1 == 1.0 in JSON, but True == 1 only in Python (bool is not in _NUMBERS).
        if ta not in _NUMBERS or tb not in _NUMBERS or a != b:
            out.append((text(path), "changed", a, b))
        return
    ka, kb = _kind(a), _kind(b)
    if ka == kb == "dict":
        _dicts(a, b, path, out, None, booleans)
    elif ka == kb == "list":
        _lists(a, b, path, out, booleans)
    elif ka == "other" or kb == "other":
        _other(a, b, path, out)
    else:
        out.append((text(path), "changed", a, b))


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "dict"
    if isinstance(value, list | tuple):
        return "list"
    if type(value) in SCALARS:
        return "scalar"
    return "other"


# _dicts and _lists inline the common cases of _walk (same scalar type; unchanged
# container): a Python call per element costs more than comparing it. Containers that
# compare equal are confirmed together, one JSON text per side for all of them, and walked
# one by one only when that fails.


def _equal_c(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # elements whose == raises (arrays): walk them instead
        return False


def _confirm(
    pending: list[Any], a: Any, b: Any, path: Path, out: list[Change], booleans: bool
) -> None:
    if not booleans or json_equal([a[k] for k in pending], [b[k] for k in pending]):
        return
    for key in pending:
        _walk(a[key], b[key], (path, key), out, booleans)


def _into(va: Any, vb: Any, path: Path, out: list[Change], booleans: bool) -> None:
    """Descend into two values already known to differ."""
    t = type(va)
    if t is type(vb):
        if t is dict:
            _dicts(va, vb, path, out, None, booleans)
            return
        if t is list or t is tuple:
            _lists(va, vb, path, out, booleans)
            return
    _walk(va, vb, path, out, booleans)


def _dicts(
    a: Mapping, b: Mapping, path: Path, out: list[Change], exclude: Any, booleans: bool
) -> None:
    if not booleans:
        # Same keys: let C find the values that differ (== is exact without booleans).
        try:
            differing = (
                [k for k, v in a.items() if v is not b[k] and v != b[k]]
                if a.keys() == b.keys()
                else None
            )
        except Exception:  # values whose == raises: the loop below
            differing = None
        if differing is not None:
            for key in differing:
                if exclude is None or key not in exclude:
                    _into(a[key], b[key], (path, key), out, booleans)
            return
    removed = 0
    pending = []
    for key, va in a.items():
        vb = b.get(key, MISSING)
        if va is vb:
            continue
        if exclude is not None and key in exclude:
            continue
        if vb is MISSING and key not in b:
            removed += 1
            out.append((text((path, key)), "removed", va, MISSING))
            continue
        t = type(va)
        if t is type(vb):
            if t in SCALARS:
                if va != vb or va != va:
                    out.append((text((path, key)), "changed", va, vb))
                continue
            if t in _CONTAINERS:
                try:
                    equal = va == vb
                except Exception:  # elements whose == raises (arrays): walk them instead
                    equal = False
                if equal:
                    pending.append(key)
                    continue
        _walk(va, vb, (path, key), out, booleans)
    if pending:
        _confirm(pending, a, b, path, out, booleans)
    # Keys were only added if b has more than a kept: skip the second loop otherwise.
    if len(b) != len(a) - removed:
        for key, vb in b.items():
            if key not in a and not (exclude is not None and key in exclude):
                out.append((text((path, key)), "added", MISSING, vb))


def _lists(a: Any, b: Any, path: Path, out: list[Change], booleans: bool) -> None:
    # The element loop below repeats the one in the dict walk on purpose: this is the hot
    # path of every tracked write, and a shared helper costs a call per leaf.
    na, nb = len(a), len(b)
    if not booleans:
        try:
            differing = [i for i in range(min(na, nb)) if a[i] is not b[i] and a[i] != b[i]]
        except Exception:  # elements whose == raises: the loop below
            differing = None
        if differing is not None:
            for i in differing:
                _into(a[i], b[i], (path, i), out, booleans)
            for i in range(nb, na):
                out.append((text((path, i)), "removed", a[i], MISSING))
            for i in range(na, nb):
                out.append((text((path, i)), "added", MISSING, b[i]))
            return
    pending = []
    for i in range(min(na, nb)):
        va, vb = a[i], b[i]
        if va is vb:
            continue
        t = type(va)
        if t is type(vb):
            if t in SCALARS:
                if va != vb or va != va:
                    out.append((text((path, i)), "changed", va, vb))
                continue
            if t in _CONTAINERS:
                try:
                    equal = va == vb
                except Exception:  # elements whose == raises (arrays): walk them instead
                    equal = False
                if equal:
                    pending.append(i)
                    continue
        _walk(va, vb, (path, i), out, booleans)
    if pending:
        _confirm(pending, a, b, path, out, booleans)
    for i in range(nb, na):
        out.append((text((path, i)), "removed", a[i], MISSING))
    for i in range(na, nb):
        out.append((text((path, i)), "added", MISSING, b[i]))


def _other(a: Any, b: Any, path: Path, out: list[Change]) -> None:
    """Values the walk does not understand: DeepDiff decides, paths are made ours.

    Values that are the same JSON (a datetime and its ISO text, an enum and its value) are
    the same to the store, so they are no change.
    """
    if json_equal(a, b):
        return
    if (a is None and isinstance(b, float) and b != b) or (
        b is None and isinstance(a, float) and a != a
    ):
        return  # NaN is written as null
    from deepdiff import DeepDiff  # imported on first use: it costs ~0.2 s to import

    tree = DeepDiff(a, b, view="tree", zip_ordered_iterables=True, threshold_to_diff_deeper=0)
    whole_sets: dict[str, tuple[Any, Any]] = {}
    base = text(path)
    for report, levels in tree.items():
        for level in levels:
            if report.startswith("set_item"):
                # A set has no positions: report the set as one changed value.
                up = level.up
                whole_sets[_prefixed(base, up.path(output_format="list"))] = (up.t1, up.t2)
                continue
            sub = _prefixed(base, level.path(output_format="list"))
            if report.endswith("_added"):
                out.append((sub, "added", MISSING, level.t2))
            elif report.endswith("_removed"):
                out.append((sub, "removed", level.t1, MISSING))
            elif report == "type_changes" and _same_number(level.t1, level.t2):
                continue
            else:
                out.append((sub, "changed", level.t1, level.t2))
    for sub, (t1, t2) in whole_sets.items():
        out.append((sub, "changed", t1, t2))


def _prefixed(base: str, parts: list[Any]) -> str:
    path = "" if base == ROOT else base
    for part in parts:
        path = f"{path}.{part}" if path else str(part)
    return path or ROOT


def _same_number(a: Any, b: Any) -> bool:
    return type(a) in _NUMBERS and type(b) in _NUMBERS and a == b
