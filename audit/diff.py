"""Field-level diff: which fields of a document one write changed, as contract paths.

The rules are docs/diff.md's (the JavaScript client, the PostgreSQL trigger and the snapshot
import follow the same ones; tests/fixtures/diff_cases.json holds the worked cases). A change
is ``(field, change, old, new)``: ``field`` a path (``data.content``, ``indexingList.0.status``,
``nodes[block-A].data.content``), ``$`` for the value as a whole; ``change`` one of
``changed``/``added``/``removed``; ``old``/``new`` the values, ``MISSING`` when absent.

Lists of objects that all carry a unique key (``list_keys``, default ``id``) pair their
elements by key, so an insert, a delete or a move does not shift every later element; other
lists pair by position. ``exclude`` patterns drop paths (UI state, transport flags) from the
diff and from the values events carry. `Rules` holds both, compiled once.

JSON-like data (dict, list, tuple, str, int, float, bool, None) goes through a hand-written
walk (~100x faster than DeepDiff, which is what makes leaving the instrumentation on
affordable); any other value (sets, custom objects) is handed to DeepDiff.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
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
STAMP_KEY: Final = "_meta"  # the document's metadata stamp (audit/stamp.py): never diffed
DEFAULT_LIST_KEYS: Final[Mapping[str, str | None]] = {"*": "id"}

Change = tuple[str, str, Any, Any]

SCALARS: Final = frozenset((str, int, float, bool, type(None)))  # compared, copied, as they are
_NUMBERS: Final = frozenset((int, float))
_CONTAINERS: Final = frozenset((dict, list, tuple))

# Paths are built as (parent, step) pairs and turned into text only for a reported change or a
# pattern to match: most of a document is unchanged, and formatting every path would cost more
# than the walk. A step is an object key, a list index, or an `_Item` (a list element by key).
Path = tuple[Any, Any] | None


class _Item(str):
    """A path step naming a list element by its key, held as written: ``[block-A]``."""

    __slots__ = ()


def element_step(key_text: str) -> _Item:
    """The path step naming a list element by its key text: ``[block-A]``, with ``\\`` and
    ``]`` escaped."""
    return _Item("[" + key_text.replace("\\", "\\\\").replace("]", "\\]") + "]")


def text(path: Path) -> str:
    """``(((None, "nodes"), element_step("a")), "v")`` -> ``"nodes[a].v"``; the root is ``$``."""
    if path is None:
        return ROOT
    parent, step = path
    if parent is None:
        return str(step)
    # Recursion, one call per step, costs less than collecting the steps and reversing
    # them (paths are a few steps deep).
    if type(step) is _Item:
        return text(parent) + step
    return f"{text(parent)}.{step}"


# --- rules: which lists are keyed, which paths are excluded --------------------------------------


class _Varies:
    __slots__ = ()


_VARIES: Final = _Varies()  # the list key depends on the path: match the patterns


def _pattern(pattern: str) -> str:
    """A docs/diff.md pattern as a regular expression: ``*`` is any run of characters."""
    return ".*".join(re.escape(part) for part in pattern.split("*"))


class Rules:
    """``list_keys`` and ``exclude`` (docs/diff.md), compiled once.

    ``list_keys``: ordered ``{pattern: key}`` for lists (a key of ``None``: by position);
    default ``{"*": "id"}``, ``{}`` turns keying off. ``exclude``: patterns of paths to leave
    out. ``stamp_key``: the top-level key of the metadata stamp, always left out (None: none).
    """

    __slots__ = ("list_keys", "exclude", "stamp_key", "_key_patterns", "constant_key",
                 "excluded", "tails", "skip", "_walks")

    def __init__(
        self,
        list_keys: Mapping[str, str | None] | None = None,
        exclude: Iterable[str] = (),
        stamp_key: str | None = STAMP_KEY,
    ):
        if list_keys is None:
            list_keys = DEFAULT_LIST_KEYS
        if not isinstance(list_keys, Mapping):
            raise TypeError("list_keys must map path patterns to keys, e.g. {'*': 'id'}")
        for pattern, key in list_keys.items():
            if not isinstance(pattern, str) or not (key is None or isinstance(key, str) and key):
                raise TypeError(f"list_keys: {pattern!r}: {key!r} is not a pattern and a key name")
        exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude)
        for pattern in exclude:
            if not isinstance(pattern, str) or not pattern:
                raise TypeError(f"exclude: {pattern!r} is not a path pattern")
        self.list_keys = tuple(list_keys.items())
        self.exclude = exclude
        self.stamp_key = stamp_key
        self._key_patterns = tuple(
            (re.compile(_pattern(p), re.DOTALL), k) for p, k in self.list_keys
        )
        # Most configurations start with "*" (the default): no path text to build per list.
        first = self.list_keys[0] if self.list_keys else ("*", None)
        self.constant_key = first[1] if set(first[0]) == {"*"} else _VARIES
        self.excluded = (
            re.compile("|".join(f"(?:{_pattern(p)})" for p in exclude), re.DOTALL)
            if exclude else None
        )
        # What a matching path's last step must end with, when every pattern says (the text
        # after its last "." or "*"): most steps are ruled out without building their path.
        tails = [re.split(r"[.*]", p)[-1] for p in exclude]
        self.tails = (
            tuple(tails) if tails and all(t and "[" not in t and "]" not in t for t in tails)
            else None
        )
        self.skip = frozenset((stamp_key,)) if stamp_key is not None else None
        self._walks = (_Walk(self, "", False), _Walk(self, "", True))

    def walk(self, prefix: str, booleans: bool) -> _Walk:
        """The walk's state for one diff (made once for the usual case: no prefix)."""
        return _Walk(self, prefix, booleans) if prefix else self._walks[booleans]

    def key_for(self, path_text: str) -> str | None:
        """The key the list at ``path_text`` is keyed by, None: by position."""
        for pattern, key in self._key_patterns:
            if pattern.fullmatch(path_text):
                return key
        return None

    def __repr__(self) -> str:
        return f"Rules(list_keys={dict(self.list_keys)!r}, exclude={list(self.exclude)!r})"


@functools.lru_cache(maxsize=64)
def _cached_rules(
    list_keys: tuple[tuple[str, str | None], ...] | None, exclude: tuple[str, ...]
) -> Rules:
    return Rules(None if list_keys is None else dict(list_keys), exclude)


def _rules_of(
    list_keys: Mapping[str, str | None] | None = None, exclude: Iterable[str] = ()
) -> Rules:
    """`Rules` for these settings, compiled once per distinct value."""
    exclude = (exclude,) if isinstance(exclude, str) else tuple(sorted(exclude))
    keys = None if list_keys is None else tuple(list_keys.items())
    return _cached_rules(keys, exclude)


class _Walk:
    """What one diff carries down the walk: the rules, the path prefix, the mode."""

    __slots__ = ("rules", "prefix", "booleans", "excluded", "constant_key")

    def __init__(self, rules: Rules, prefix: str, booleans: bool):
        self.rules = rules
        self.prefix = prefix
        self.booleans = booleans
        self.excluded = rules.excluded
        self.constant_key = rules.constant_key

    def text(self, path: Path) -> str:
        """The path as patterns see it: with the prefix of the document it sits in."""
        own = text(path)
        if not self.prefix:
            return own
        if path is None:
            return self.prefix
        return self.prefix + own if own[0] == "[" else f"{self.prefix}.{own}"

    def hit(self, path: Path) -> bool:
        """Whether an exclude pattern matches ``path`` (the walk checks each step it takes,
        so the paths above it were checked on the way down)."""
        tails = self.rules.tails
        if tails is not None and path is not None and not str(path[1]).endswith(tails):
            return False
        return self.excluded.fullmatch(self.text(path)) is not None  # type: ignore[union-attr]

    def list_key(self, path: Path) -> str | None:
        key = self.constant_key
        if key is _VARIES:
            return self.rules.key_for(self.text(path))
        return key  # type: ignore[return-value]

    def carry(self, value: Any, path: Path) -> Any:
        """``value`` as an event carries it: without its excluded parts (and the stamp, at
        the root). Inside it, lists keyed on their own are addressed by key."""
        if type(value) in SCALARS:
            return value
        if self.excluded is None and (path is not None or self.rules.skip is None or self.prefix):
            return value
        return self._strip(value, path)

    def _strip(self, value: Any, path: Path) -> Any:
        t = type(value)
        if t in SCALARS:
            return value
        if t is dict or isinstance(value, Mapping):
            skip = self.rules.skip if path is None and not self.prefix else None
            out = {}
            for key, v in value.items():
                if skip is not None and key in skip:
                    continue
                sub = (path, key)
                if self.excluded is not None and self.hit(sub):
                    continue
                out[key] = self._strip(v, sub)
            return out
        if t is list or t is tuple:
            key = self.list_key(path)
            by_key = keyed_elements(value, key) if key is not None else None
            steps = (
                zip(map(element_step, by_key), by_key.values(), strict=True)
                if by_key is not None else enumerate(value)
            )
            return [
                self._strip(v, (path, step))
                for step, v in steps
                if self.excluded is None or not self.hit((path, step))
            ]
        return value


DEFAULT_RULES: Final = Rules()


def keyed_elements(items: Any, key: str) -> dict[str, Any] | None:
    """The elements by key text, if the keyed rule accepts the list (docs/diff.md: every
    element an object holding ``key`` as a string or an integer, no key text twice)."""
    if not items:
        return {}
    first = items[0]
    if type(first) is dict:
        if key not in first:
            return None  # the common "list of objects without ids": decided at once
        # Dicts with string keys, the usual case, in loops that run in C; the rest below.
        if set(map(type, items)) == _DICT:
            try:
                out = {e[key]: e for e in items}
            except (KeyError, TypeError):  # an element without the key; an unhashable key
                return None
            if len(out) == len(items) and set(map(type, out)) == _STR:
                return out  # else: integer keys, or a key twice (maybe "7" and 7)
    elif type(first) in SCALARS:
        return None
    return _keyed_slowly(items, key)


_DICT: Final = {dict}
_STR: Final = {str}


def _keyed_slowly(items: Any, key: str) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for element in items:
        if type(element) is not dict and not isinstance(element, Mapping):
            return None
        value = key_text(element.get(key, MISSING))
        if value is None or value in out:
            return None
        out[value] = element
    return out


def key_text(value: Any) -> str | None:
    """A list element's key as paths write it: a string as it is, an integer in decimal;
    None for anything else (booleans and floats are no keys)."""
    t = type(value)
    if t is str:
        return value
    if t is int:
        return str(value)
    if isinstance(value, str):  # a str subclass (StrEnum): its text
        return str.__str__(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return int.__repr__(value)
    return None


def element_path(list_path: str, key: str) -> str:
    """The path of the element named ``key`` (its key text) in the list at ``list_path``:
    ``element_path("nodes", "a]b")`` is ``nodes[a\\]b]``."""
    return ("" if list_path == ROOT else list_path) + element_step(key)


# --- the walk ----------------------------------------------------------------------------------


def diff(
    old: Any,
    new: Any,
    *,
    list_keys: Mapping[str, str | None] | None = None,
    exclude: Iterable[str] = (),
    rules: Rules | None = None,
    prefix: str = "",
    booleans: bool = True,
) -> list[Change]:
    """The changes that turn ``old`` into ``new`` (docs/diff.md).

    ``rules``: compiled `Rules` (the instrumentation passes its settings'); else they are
    built from ``list_keys`` (default ``{"*": "id"}``) and ``exclude`` patterns; the
    top-level ``_meta`` stamp is always left out. ``prefix``: the path of ``old``/``new``
    inside a larger document, for the patterns only (the snapshot import diffs each list
    element on its own); the stamp rule does not apply below the top.
    ``booleans=False`` promises that neither side holds a boolean, which lets unchanged
    containers be skipped on ``==`` alone (see `_same`).

    >>> diff({"a": 1, "l": [1]}, {"a": 2, "l": [1, 5]})
    [('a', 'changed', 1, 2), ('l.1', 'added', MISSING, 5)]
    >>> diff({"nodes": [{"id": "a", "v": 1}]}, {"nodes": [{"id": "b"}, {"id": "a", "v": 2}]})
    [('nodes[a].v', 'changed', 1, 2), ('nodes[b]', 'added', MISSING, {'id': 'b'})]
    """
    if rules is None:
        plain = list_keys is None and not exclude
        rules = DEFAULT_RULES if plain else _rules_of(list_keys, exclude)
    cx = rules.walk(prefix, booleans)
    out: list[Change] = []
    if cx.excluded is not None and cx.hit(None):
        return out
    if (type(old) is dict or isinstance(old, Mapping)) and (
        type(new) is dict or isinstance(new, Mapping)
    ):
        _dicts(old, new, None, out, cx, None if prefix else rules.skip)
    else:
        _walk(old, new, None, out, cx)
    return out


def _same(a: Any, b: Any, booleans: bool) -> bool:
    """Whether two containers are certainly equal as JSON, without walking them.

    ``==`` runs in C at a fraction of the walk's cost, and for JSON data it only lies about
    booleans (``True == 1``); where booleans may occur the JSON text settles it.
    """
    return _equal_c(a, b) and (not booleans or json_equal(a, b))


def json_equal(a: Any, b: Any) -> bool:
    """Same JSON text (without a ``default``: values orjson does not know are unequal)."""
    try:
        return orjson.dumps(a) == orjson.dumps(b)
    except (TypeError, orjson.JSONEncodeError):
        return False


def _walk(a: Any, b: Any, path: Path, out: list[Change], cx: _Walk) -> None:
    """Two values at ``path`` (already checked against ``exclude`` by the caller)."""
    ta = type(a)
    tb = type(b)
    if ta is tb:
        if ta in SCALARS:
            # NaN and ±Infinity are all null in JSON, as the events and the store have them.
            if a != b and (ta is not float or math.isfinite(a) or math.isfinite(b)):
                out.append((text(path), "changed", a, b))
            return
        if ta is dict:
            if not _same(a, b, cx.booleans):
                _dicts(a, b, path, out, cx, None)
            return
        if ta is list or ta is tuple:
            if not _same(a, b, cx.booleans):
                _lists(a, b, path, out, cx)
            return
    elif ta in SCALARS and tb in SCALARS:
        # 1 == 1.0 in JSON, but True == 1 only in Python (bool is not in _NUMBERS).
        if (ta not in _NUMBERS or tb not in _NUMBERS or a != b) and not (
            _null_in_json(a) and _null_in_json(b)
        ):
            out.append((text(path), "changed", a, b))
        return
    ka, kb = _kind(a), _kind(b)
    if ka == kb == "dict":
        _dicts(a, b, path, out, cx, None)
    elif ka == kb == "list":
        _lists(a, b, path, out, cx)
    elif ka == "other" or kb == "other":
        _other(a, b, path, out, cx)
    else:
        out.append((text(path), "changed", cx.carry(a, path), cx.carry(b, path)))


def _null_in_json(value: Any) -> bool:
    """None, or a number JSON has no form for (NaN, ±Infinity): written as null."""
    if isinstance(value, float):
        return not math.isfinite(value)
    return value is None or (isinstance(value, Decimal) and not value.is_finite())


def _is_number(value: Any) -> bool:
    return type(value) in _NUMBERS or isinstance(value, Decimal)


def _same_number(a: Any, b: Any) -> bool:
    """Two numbers that are the same JSON number: ``Decimal("12.50")`` is ``12.5``. Against a
    float, at a double's precision, as the store reads numbers with a fraction; else exactly
    (integers). Booleans are not numbers."""
    if not (_is_number(a) and _is_number(b)):
        return False
    if a == b:
        return True
    if type(a) is float or type(b) is float:
        try:
            return float(a) == float(b)
        except (ValueError, OverflowError):  # a signalling NaN
            return False
    return False


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "dict"
    if isinstance(value, list | tuple):
        return "list"
    if type(value) in SCALARS:
        return "scalar"
    return "other"


# _dicts and the list walks inline the common cases of _walk (same scalar type; unchanged
# container): a Python call per element costs more than comparing it. Containers that
# compare equal are confirmed together, one JSON text per side for all of them, and walked
# one by one only when that fails. Each new path step is checked against `exclude` before
# anything is reported or walked below it.


def _equal_c(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # elements whose == raises (arrays): walk them instead
        return False


def _confirm(
    pending: list[Any], steps: list[Any], a: Any, b: Any, path: Path, out: list[Change],
    cx: _Walk,
) -> None:
    """``a[k] == b[k]`` for each pending ``k`` by ``==``; the JSON text decides (booleans).
    ``steps``: each one's path step (the key itself, or the element's `_Item`)."""
    if json_equal([a[k] for k in pending], [b[k] for k in pending]):
        return
    for key, step in zip(pending, steps, strict=True):
        sub = (path, step)
        if cx.excluded is None or not cx.hit(sub):
            _walk(a[key], b[key], sub, out, cx)


def _into(va: Any, vb: Any, path: Path, out: list[Change], cx: _Walk) -> None:
    """Descend into two values already known to differ."""
    t = type(va)
    if t is type(vb):
        if t is dict:
            _dicts(va, vb, path, out, cx, None)
            return
        if t is list or t is tuple:
            _lists(va, vb, path, out, cx)
            return
        if t in SCALARS:  # the leaf a write changed, mostly: as _walk reports it
            if va != vb and (t is not float or math.isfinite(va) or math.isfinite(vb)):
                out.append((text(path), "changed", va, vb))
            return
    _walk(va, vb, path, out, cx)


def _dicts(
    a: Mapping, b: Mapping, path: Path, out: list[Change], cx: _Walk, skip: Any
) -> None:
    """Two objects; ``skip``: keys left out here (the stamp, at the top)."""
    excluded = cx.excluded
    if not cx.booleans:
        # Same keys: let C find the values that differ (== is exact without booleans).
        try:
            if a.keys() != b.keys():
                differing = None
            elif skip is None:
                differing = [k for k, v in a.items() if v is not b[k] and v != b[k]]
            else:  # the stamp is never reported: not compared either
                differing = [
                    k for k, v in a.items() if k not in skip and v is not b[k] and v != b[k]
                ]
        except Exception:  # values whose == raises: the loop below
            differing = None
        if differing is not None:
            for key in differing:
                sub = (path, key)
                if excluded is None or not cx.hit(sub):
                    _into(a[key], b[key], sub, out, cx)
            return
    removed = 0
    pending = []
    for key, va in a.items():
        vb = b.get(key, MISSING)
        if va is vb:
            continue
        if vb is MISSING and key not in b:
            removed += 1  # counted before the skips: the added loop below relies on it
            sub = (path, key)
            if (skip is None or key not in skip) and (excluded is None or not cx.hit(sub)):
                out.append((text(sub), "removed", cx.carry(va, sub), MISSING))
            continue
        if skip is not None and key in skip:
            continue
        t = type(va)
        if t is type(vb):
            if t in SCALARS:
                if va != vb and (t is not float or math.isfinite(va) or math.isfinite(vb)):
                    sub = (path, key)
                    if excluded is None or not cx.hit(sub):
                        out.append((text(sub), "changed", va, vb))
                continue
            if t in _CONTAINERS:
                try:
                    equal = va == vb
                except Exception:  # elements whose == raises (arrays): walk them instead
                    equal = False
                if equal:
                    pending.append(key)
                    continue
        sub = (path, key)
        if excluded is None or not cx.hit(sub):
            _walk(va, vb, sub, out, cx)
    if pending:
        _confirm(pending, pending, a, b, path, out, cx)
    # Keys were only added if b has more than a kept: skip the second loop otherwise.
    if len(b) != len(a) - removed:
        for key, vb in b.items():
            if key not in a and (skip is None or key not in skip):
                sub = (path, key)
                if excluded is None or not cx.hit(sub):
                    out.append((text(sub), "added", MISSING, cx.carry(vb, sub)))


def _lists(a: Any, b: Any, path: Path, out: list[Change], cx: _Walk) -> None:
    key = cx.constant_key
    if key is _VARIES:
        key = cx.rules.key_for(cx.text(path))
    if key is not None:
        by_key_a = keyed_elements(a, key)
        if by_key_a is not None:
            by_key_b = keyed_elements(b, key)
            if by_key_b is not None:
                _keyed_lists(by_key_a, by_key_b, path, out, cx)
                return
    _positional(a, b, path, out, cx)


def _keyed_lists(
    a: dict[str, Any], b: dict[str, Any], path: Path, out: list[Change], cx: _Walk
) -> None:
    """Two lists by key (``a``/``b``: elements by key text): where they stand is no change."""
    excluded = cx.excluded
    if not cx.booleans:
        # Let C find the elements that differ (== is exact without booleans).
        try:
            differing = [k for k, v in a.items() if (w := b.get(k, MISSING)) is not v and w != v]
        except Exception:  # elements whose == raises: the loop below
            differing = None
        if differing is not None:
            for key in differing:
                sub = (path, element_step(key))
                if excluded is not None and cx.hit(sub):
                    continue
                if key in b:
                    _into(a[key], b[key], sub, out, cx)
                else:
                    out.append((text(sub), "removed", cx.carry(a[key], sub), MISSING))
            if len(b) != len(a) - sum(1 for k in differing if k not in b):
                _added(a, b, path, out, cx)
            return
    pending = []
    removed = 0
    for key, va in a.items():
        vb = b.get(key, MISSING)
        if va is vb:
            continue
        if vb is not MISSING:
            if _equal_c(va, vb):
                if cx.booleans:
                    pending.append(key)
                continue
            sub = (path, element_step(key))
            if excluded is None or not cx.hit(sub):
                _into(va, vb, sub, out, cx)
            continue
        removed += 1
        sub = (path, element_step(key))
        if excluded is None or not cx.hit(sub):
            out.append((text(sub), "removed", cx.carry(va, sub), MISSING))
    if pending:
        _confirm(pending, [element_step(k) for k in pending], a, b, path, out, cx)
    if len(b) != len(a) - removed:
        _added(a, b, path, out, cx)


def _added(a: dict[str, Any], b: dict[str, Any], path: Path, out: list[Change], cx: _Walk) -> None:
    """The elements of ``b`` whose key ``a`` lacks."""
    for key, vb in b.items():
        if key not in a:
            sub = (path, element_step(key))
            if cx.excluded is None or not cx.hit(sub):
                out.append((text(sub), "added", MISSING, cx.carry(vb, sub)))


def _positional(a: Any, b: Any, path: Path, out: list[Change], cx: _Walk) -> None:
    # The element loop below repeats the one in the dict walk on purpose: this is the hot
    # path of every tracked write, and a shared helper costs a call per leaf.
    na, nb = len(a), len(b)
    excluded = cx.excluded
    if not cx.booleans:
        try:
            differing = [i for i in range(min(na, nb)) if a[i] is not b[i] and a[i] != b[i]]
        except Exception:  # elements whose == raises: the loop below
            differing = None
        if differing is not None:
            for i in differing:
                sub = (path, i)
                if excluded is None or not cx.hit(sub):
                    _into(a[i], b[i], sub, out, cx)
            if na != nb:
                _ends(a, b, na, nb, path, out, cx)
            return
    pending = []
    for i in range(min(na, nb)):
        va, vb = a[i], b[i]
        if va is vb:
            continue
        t = type(va)
        if t is type(vb):
            if t in SCALARS:
                if va != vb and (t is not float or math.isfinite(va) or math.isfinite(vb)):
                    sub = (path, i)
                    if excluded is None or not cx.hit(sub):
                        out.append((text(sub), "changed", va, vb))
                continue
            if t in _CONTAINERS:
                try:
                    equal = va == vb
                except Exception:  # elements whose == raises (arrays): walk them instead
                    equal = False
                if equal:
                    pending.append(i)
                    continue
        sub = (path, i)
        if excluded is None or not cx.hit(sub):
            _walk(va, vb, sub, out, cx)
    if pending:
        _confirm(pending, pending, a, b, path, out, cx)
    if na != nb:
        _ends(a, b, na, nb, path, out, cx)


def _ends(a: Any, b: Any, na: int, nb: int, path: Path, out: list[Change], cx: _Walk) -> None:
    """The elements past the shorter list's end: removed, or added."""
    excluded = cx.excluded
    for i in range(nb, na):
        sub = (path, i)
        if excluded is None or not cx.hit(sub):
            out.append((text(sub), "removed", cx.carry(a[i], sub), MISSING))
    for i in range(na, nb):
        sub = (path, i)
        if excluded is None or not cx.hit(sub):
            out.append((text(sub), "added", MISSING, cx.carry(b[i], sub)))


def _other(a: Any, b: Any, path: Path, out: list[Change], cx: _Walk) -> None:
    """Values the walk does not understand: DeepDiff decides, paths are made ours.

    Values that are the same JSON (a datetime and its ISO text, an enum and its value) are
    the same to the store, so they are no change.
    """
    if json_equal(a, b):
        return
    if _null_in_json(a) and _null_in_json(b):
        return  # NaN and ±Infinity are written as null
    if _is_number(a) and _is_number(b):  # a Decimal (psycopg's numeric) and a number
        if not _same_number(a, b):
            out.append((text(path), "changed", a, b))
        return
    from deepdiff import DeepDiff  # imported on first use: it costs ~0.2 s to import

    tree = DeepDiff(a, b, view="tree", zip_ordered_iterables=True, threshold_to_diff_deeper=0)
    whole_sets: dict[Path, tuple[Any, Any]] = {}
    for report, levels in tree.items():
        for level in levels:
            if report.startswith("set_item"):
                # A set has no positions: report the set as one changed value.
                up = level.up
                sub = _below(path, up.path(output_format="list"), cx)
                if sub is not _EXCLUDED:
                    whole_sets[sub] = (up.t1, up.t2)
                continue
            sub = _below(path, level.path(output_format="list"), cx)
            if sub is _EXCLUDED:
                continue
            if report.endswith("_added"):
                out.append((text(sub), "added", MISSING, cx.carry(level.t2, sub)))
            elif report.endswith("_removed"):
                out.append((text(sub), "removed", cx.carry(level.t1, sub), MISSING))
            elif report == "type_changes" and _same_number(level.t1, level.t2):
                continue
            else:
                out.append((text(sub), "changed", cx.carry(level.t1, sub), cx.carry(level.t2, sub)))
    for sub, (t1, t2) in whole_sets.items():
        out.append((text(sub), "changed", t1, t2))


_EXCLUDED: Final[Any] = object()


def _below(path: Path, steps: list[Any], cx: _Walk) -> Any:
    """``path`` extended by DeepDiff's steps, or `_EXCLUDED` if it passes an excluded path."""
    for step in steps:
        path = (path, step)
        if cx.excluded is not None and cx.hit(path):
            return _EXCLUDED
    return path


# --- reading paths back: applying changes to a document ------------------------------------------

_LISTS: Final = (list, tuple)
_NAME = re.compile(r"[^.\[]*")
_STEP = re.compile(r"\.([^.\[]*)|\[((?:[^\\\]]|\\.)*)\]", re.DOTALL)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


@functools.lru_cache(maxsize=4096)  # a service writes the same few paths over and over
def split_path(field: str) -> tuple[tuple[int, bool, str], ...]:
    """The steps of a path: ``(start, by_key, step)`` with ``start`` the step's offset in
    ``field`` (``field[:start]`` is the path of the container it is in), ``by_key`` True for
    a list element named by its key (``step`` unescaped), else an object key or an index.

    >>> split_path("nodes[a\\\\]b].data")
    ((0, False, 'nodes'), (5, True, 'a]b'), (11, False, 'data'))
    """
    if field == ROOT:
        return ()
    steps = []
    at = 0
    if not field.startswith("["):
        name = _NAME.match(field).group()  # type: ignore[union-attr]
        steps.append((0, False, name))
        at = len(name)
    while at < len(field):
        m = _STEP.match(field, at)
        if m is None:
            raise ValueError(f"not a path: {field!r} (at offset {at})")
        name, key = m.groups()
        if name is not None:
            steps.append((at, False, name))
        else:
            steps.append((at, True, _ESCAPE.sub(r"\1", key) if "\\" in key else key))
        at = m.end()
    return tuple(steps)


def locate(doc: Any, field: str, rules: Rules | None = None) -> tuple[Any, Any]:
    """The container holding ``field`` and its key there: a dict key, or a list position
    (for an element named by key that the list does not hold, the list's length)."""
    if "[" not in field and field != ROOT:  # positions and object keys only: no parsing
        parent = doc
        *parents, last = field.split(".")
        for part in parents:
            parent = parent[int(part)] if isinstance(parent, _LISTS) else parent[part]
        return parent, int(last) if isinstance(parent, _LISTS) else last
    rules = rules or DEFAULT_RULES
    steps = split_path(field)
    if not steps:
        raise ValueError("the root has no container")
    parent = doc
    for i, (start, by_key, step) in enumerate(steps):
        if isinstance(parent, _LISTS):
            if by_key:
                key = rules.constant_key
                if key is _VARIES:
                    key = rules.key_for(field[:start] or ROOT)
                at = _position(parent, key, step)  # type: ignore[arg-type]
            else:
                at = int(step)
        else:
            at = step
        if i == len(steps) - 1:
            return parent, at
        parent = parent[at]
    raise AssertionError("unreachable")


def _position(items: Any, key: str | None, text_of_key: str) -> int:
    """Where the element whose key text is ``text_of_key`` stands; the length if nowhere."""
    if key is not None:
        for i, element in enumerate(items):
            value = (
                element.get(key, MISSING)
                if type(element) is dict or isinstance(element, Mapping)
                else MISSING
            )
            if value == text_of_key or (type(value) is not str and key_text(value) == text_of_key):
                return i
    return len(items)


def patch(doc: Any, changes: list[Change], rules: Rules | None = None) -> Any:
    """Apply ``changes`` (from `diff` with the same ``rules``) to ``doc`` in place; returns
    the patched value (a change of ``$`` replaces it). Elements added by key go at the end;
    removed list items go last to first, so positions hold."""
    removals = []
    for field, change, _old, new in changes:
        if field == ROOT:
            doc = new
        elif change == "removed":
            removals.append(field)
        else:
            parent, key = locate(doc, field, rules)
            if isinstance(parent, list) and key == len(parent):
                parent.append(new)
            else:
                parent[key] = new
    for field in reversed(removals):
        parent, key = locate(doc, field, rules)
        del parent[key]
    return doc
