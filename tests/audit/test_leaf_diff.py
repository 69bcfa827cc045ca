"""The one-field shortcut (audit/leaf_diff.py) reports what the full diff reports, or nothing."""

from __future__ import annotations

import copy

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.diff import DEFAULT_RULES, Rules, diff
from audit.leaf_diff import leaf_change

# Scalars whose texts are prefixes of one another (1, 10, 12; "a", "a1"), numbers equal
# across types (1, 1.0, True), the literals, and texts that JSON escapes or writes in several
# bytes (as keys too).
_leaves = st.sampled_from([1, 10, 12, 1.0, 1.5, 0, "1", "a", "a1", "", "é", 'a"b', "\n", True,
                           False, None])
_keys = st.sampled_from(["a", "v", "id", "_meta", "é", 'a"b', "a\\b", "\t"])
_keyed = st.lists(
    st.fixed_dictionaries({"id": st.sampled_from(["a", "b", "é", 7, 8]), "v": _leaves}),
    max_size=4, unique_by=lambda e: str(e["id"]),
)
_values = st.recursive(
    _leaves | _keyed,
    lambda inner: st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple)
    | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=10,
)
_documents = st.dictionaries(st.sampled_from(["id", "v", "nodes", "_meta", "x"]) | _keys,
                             _values, min_size=1, max_size=5)
_rules = st.sampled_from([
    Rules(),
    Rules(exclude=["*.v"]),
    Rules(list_keys={"nodes": "id"}),
    Rules(list_keys={}, exclude=["nodes"]),
])


def _leaf_paths(value, path=()):
    """The paths of the scalars and of the empty containers."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _leaf_paths(v, (*path, k))
    elif isinstance(value, list | tuple) and value:
        for i, v in enumerate(value):
            yield from _leaf_paths(v, (*path, i))
    else:
        yield path


def _set(doc, path, value):
    """``doc`` with the value at ``path`` replaced (tuples on the way are rebuilt)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, tuple):
        return (*doc[:head], _set(doc[head], rest, value), *doc[head + 1:])
    doc[head] = _set(doc[head], rest, value)
    return doc


@settings(max_examples=1000, deadline=None)
@given(_documents, _rules, st.data())
def test_the_shortcut_reports_what_the_diff_reports(before, rules, data):
    """One or two leaves replaced by a value that may print as a prefix of the old one, or
    equal it across types: where the shortcut answers, its answer is the full diff's."""
    paths = list(_leaf_paths(before))
    after = copy.deepcopy(before)
    for path in data.draw(st.lists(st.sampled_from(paths), min_size=1, max_size=2)):
        after = _set(after, path, data.draw(_leaves))
    got = leaf_change(orjson.dumps(before), orjson.dumps(after), after, rules)
    if got is not None:
        assert got == diff(orjson.loads(orjson.dumps(before)), after, rules=rules)


def _block():
    return {
        "id": "block-A", "_meta": {"version": 3},
        "flags": {"pinned": True},
        "nodes": [{"id": "a", "data": {"content": "x"}}, {"id": "b", "data": {"content": "y"}}],
        "list": [{"status": "processing", "n": 1}, {"status": "processing", "n": 2}],
    }


def _shortcut(edit, rules=DEFAULT_RULES):
    before = _block()
    after = copy.deepcopy(before)
    edit(after)
    return leaf_change(orjson.dumps(before), orjson.dumps(after), after, rules)


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda d: d["list"][1].update(status="done"),
     [("list.1.status", "changed", "processing", "done")]),
    (lambda d: d["nodes"][1]["data"].update(content="z"),
     [("nodes[b].data.content", "changed", "y", "z")]),
    (lambda d: d["flags"].update(pinned=False), [("flags.pinned", "changed", True, False)]),
    (lambda d: d["list"][0].update(n=12), [("list.0.n", "changed", 1, 12)]),
])
def test_one_scalar_changed_in_place_is_found(edit, expected):
    assert _shortcut(edit) == expected


def test_an_excluded_field_is_no_change():
    rules = Rules(exclude=["nodes[*].data.content"])
    assert _shortcut(lambda d: d["nodes"][0]["data"].update(content="z"), rules) == []


@pytest.mark.parametrize("edit", [
    lambda d: (d["list"][0].update(status="a"), d["flags"].update(pinned=False)),  # two
    lambda d: d["nodes"][0].update(id="c"),  # a keyed element's key: a remove and an add
    lambda d: d["_meta"].update(version=4),  # the stamp
    lambda d: d["flags"].update(pinned=1),  # a boolean turned number: the diff decides
    lambda d: d["list"][1].update(n=2.0),  # the same number, written otherwise
    lambda d: d["list"][1].update(n={"k": 2}),  # a scalar turned object
    lambda d: d["list"][1].update(extra=1),  # a key added
    lambda d: d["list"].pop(),  # an element removed
])
def test_anything_but_one_scalar_changed_in_place_is_left_to_the_diff(edit):
    assert _shortcut(edit) is None
