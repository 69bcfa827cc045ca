"""The field-level diff: contract paths, JSON semantics, and agreement with DeepDiff."""

from __future__ import annotations

import copy
import dataclasses
import enum
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from deepdiff import DeepDiff
from hypothesis import given, settings
from hypothesis import strategies as st
from instrument_support import doc_pairs, json_docs, json_scalars, json_values

from audit.diff import MISSING, Rules, diff, locate, patch, split_path


def test_dict_keys_changed_added_removed_with_dotted_paths():
    old = {"a": 1, "b": {"c": "x", "d": 2}, "gone": [1]}
    new = {"a": 1, "b": {"c": "y", "e": None}, "new": {"k": 1}}
    assert sorted(diff(old, new)) == sorted([
        ("b.c", "changed", "x", "y"),
        ("b.d", "removed", 2, MISSING),
        ("b.e", "added", MISSING, None),
        ("gone", "removed", [1], MISSING),
        ("new", "added", MISSING, {"k": 1}),
    ])


def test_lists_are_compared_per_index_with_indexes_as_numbers():
    old = {"indexingList": [{"status": "processing"}, {"status": "x"}]}
    new = {"indexingList": [{"status": "done"}, {"status": "x"}, {"status": "new"}]}
    assert diff(old, new) == [
        ("indexingList.0.status", "changed", "processing", "done"),
        ("indexingList.2", "added", MISSING, {"status": "new"}),
    ]
    assert diff({"l": [1, 2, 3]}, {"l": [1]}) == [
        ("l.1", "removed", 2, MISSING),
        ("l.2", "removed", 3, MISSING),
    ]


def test_json_number_semantics_booleans_are_not_numbers():
    assert diff({"n": 1}, {"n": 1.0}) == []
    assert diff({"b": True}, {"b": 1}) == [("b", "changed", True, 1)]
    # hidden inside containers that Python's == calls equal
    assert diff({"x": [{"b": False}], "y": 1}, {"x": [{"b": 0}], "y": 2}) == [
        ("y", "changed", 1, 2),
        ("x.0.b", "changed", False, 0),
    ]


def test_nan_and_infinity_are_null_as_json_is():
    """orjson writes NaN and ±Infinity as null (JSON has no number for them), and the
    JavaScript client compares them so: a NaN that stays NaN is no change."""
    nan, inf = float("nan"), float("inf")
    assert diff({"a": nan, "b": [nan, -inf], "c": -0.0}, {"a": float("nan"), "b": [None, inf],
                                                          "c": 0}) == []
    assert diff({"a": inf, "b": None}, {"a": 1, "b": nan, "c": nan}) == [
        ("a", "changed", inf, 1), ("c", "added", MISSING, nan)]
    assert diff({"a": [nan], "x": {"n": 1.5}}, {"a": [0.5], "x": {"n": nan}}) == [
        ("a.0", "changed", nan, 0.5), ("x.n", "changed", 1.5, nan)]
    assert diff({"s": {nan}}, {"s": {nan}, "t": inf}) == [("t", "added", MISSING, inf)]


def test_a_decimal_is_the_number_it_holds():
    """psycopg reads PostgreSQL's numeric as Decimal; the same document from a JSON body
    holds floats. A store-side record() of one against the other changed every number."""
    stored = {"total": Decimal("12.50"), "rate": Decimal("0.1"), "n": Decimal("7"),
              "gone": Decimal("NaN"), "items": [{"price": Decimal("1.0")}]}
    incoming = {"total": 12.5, "rate": 0.1, "n": 7, "gone": None, "items": [{"price": 1}]}
    assert diff(stored, incoming) == []
    assert diff(stored, {**incoming, "total": 13, "n": 7.5, "rate": True}) == [
        ("total", "changed", Decimal("12.50"), 13), ("rate", "changed", Decimal("0.1"), True),
        ("n", "changed", Decimal("7"), 7.5)]


def test_type_change_and_whole_value():
    assert diff({"a": {"b": 1}}, {"a": [1]}) == [("a", "changed", {"b": 1}, [1])]
    assert diff(1, 2) == [("$", "changed", 1, 2)]
    assert diff({"a": 1}, {"a": 1}) == []


def test_excluded_top_level_keys_are_ignored():
    old = {"a": 1, "_meta": {"version": 1}}
    new = {"a": 2, "_meta": {"version": 2}}
    assert diff(old, new, exclude={"_meta"}) == [("a", "changed", 1, 2)]
    assert diff({"a": 1}, {"a": 1, "_meta": {}}, exclude={"_meta"}) == []


def test_tuples_are_lists():
    assert diff({"t": (1, 2)}, {"t": [1, 2]}) == []
    assert diff({"t": (1, 2)}, {"t": [1, 3]}) == [("t.1", "changed", 2, 3)]


def test_sets_and_custom_objects_go_through_deepdiff():
    changes = diff({"tags": {"a", "b"}}, {"tags": {"a", "c"}})
    assert changes == [("tags", "changed", {"a", "b"}, {"a", "c"})]

    class Point:
        def __init__(self, x, y):
            self.x, self.y = x, y

    changes = diff({"p": Point(1, 2)}, {"p": Point(1, 3)})
    assert changes == [("p.y", "changed", 2, 3)]


def test_values_with_the_same_json_are_no_change():
    class Status(enum.Enum):
        DONE = "done"

    ts = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert diff({"s": "done", "t": ts.isoformat()}, {"s": Status.DONE, "t": ts}) == []

    @dataclasses.dataclass
    class P:
        x: int

    assert diff({"p": {"x": 1}}, {"p": P(1)}) == []
    assert diff({"p": {"x": 1}}, {"p": P(2)}) == [("p", "changed", {"x": 1}, P(2))]


# --- agreement with DeepDiff on random JSON documents --------------------------------------

def _path(parts) -> str:
    return ".".join(str(p) for p in parts) or "$"


def _same_number(a, b) -> bool:
    numbers = (int, float)
    return type(a) in numbers and type(b) in numbers and a == b


def deepdiff_changes(old, new) -> list[tuple]:
    """DeepDiff's report in our shape: per index on lists, JSON numbers, canonical values."""
    out = []
    tree = DeepDiff(old, new, view="tree", zip_ordered_iterables=True, threshold_to_diff_deeper=0)
    for report, levels in tree.items():
        for level in levels:
            path = _path(level.path(output_format="list"))
            if report in ("dictionary_item_added", "iterable_item_added"):
                out.append((path, "added", None, _canon(level.t2)))
            elif report in ("dictionary_item_removed", "iterable_item_removed"):
                out.append((path, "removed", _canon(level.t1), None))
            elif report in ("values_changed", "type_changes"):
                if report == "type_changes" and _same_number(level.t1, level.t2):
                    continue
                out.append((path, "changed", _canon(level.t1), _canon(level.t2)))
            else:
                raise AssertionError(f"unexpected DeepDiff report {report}")
    return sorted(out)


def _canon(value):
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def our_changes(old, new) -> list[tuple]:
    return sorted(
        (f, c, None if o is MISSING else _canon(o), None if n is MISSING else _canon(n))
        for f, c, o, n in diff(old, new)
    )


@settings(max_examples=300, deadline=None)
@given(doc_pairs())
def test_reports_the_same_changes_as_deepdiff(pair):
    old, new = pair
    assert our_changes(old, new) == deepdiff_changes(old, new)


@settings(max_examples=100, deadline=None)
@given(json_docs)
def test_a_document_against_itself_or_its_copy_has_no_changes(doc):
    assert diff(doc, doc) == []
    assert diff(doc, orjson.loads(orjson.dumps(doc))) == []


# --- docs/diff.md: the worked cases every recorder runs --------------------------------------

CASES_FILE = Path(__file__).parents[1] / "fixtures" / "diff_cases.json"
CASES = json.loads(CASES_FILE.read_text(encoding="utf-8"))["cases"]


def _as_case_changes(changes) -> list[dict]:
    out = []
    for field, change, old, new in changes:
        item = {"field": field, "change": change}
        if old is not MISSING:
            item["old"] = old
        if new is not MISSING:
            item["new"] = new
        out.append(item)
    return out


def _sorted_json(changes: list[dict]) -> list[bytes]:
    """Sorted by field, then change (docs/diff.md); values compared as JSON text."""
    ordered = sorted(changes, key=lambda c: (c["field"], c["change"]))
    return [orjson.dumps(c, option=orjson.OPT_SORT_KEYS) for c in ordered]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_conformance_with_the_worked_cases(case):
    changes = diff(case["before"], case["after"], list_keys=case.get("list_keys"),
                   exclude=case.get("exclude", ()))
    assert _sorted_json(_as_case_changes(changes)) == _sorted_json(case["changes"])


# --- keyed lists and excluded paths --------------------------------------------------------------

def test_paths_name_elements_by_key_and_read_back():
    before = {"nodes": [{"id": "a]b", "data": {"v": 1}}, {"id": 7, "data": {"v": 1}}]}
    after = {"nodes": [{"id": 7, "data": {"v": 2}}, {"id": "a]b", "data": {"v": 3}}]}
    changes = diff(before, after)
    assert sorted(c[0] for c in changes) == ["nodes[7].data.v", "nodes[a\\]b].data.v"]
    assert split_path("nodes[a\\]b].data.v") == (
        (0, False, "nodes"), (5, True, "a]b"), (11, False, "data"), (16, False, "v"))
    parent, key = locate(before, "nodes[7].data.v")
    assert parent is before["nodes"][1]["data"] and key == "v"
    assert locate(before, "nodes[zz]") == (before["nodes"], 2)  # not there: the end
    patched = patch(copy.deepcopy(before), changes)
    assert diff(patched, after) == []  # equal but for the order, which is no change
    with pytest.raises(ValueError, match="not a path"):
        split_path("nodes[a")


def test_excluded_fields_of_a_react_flow_node_are_never_reported():
    node = {"id": "block-A", "type": "text", "position": {"x": 0, "y": 0},
            "measured": {"width": 200}, "selected": False,
            "data": {"content": "x", "isLoading": False}}
    moved = {**node, "position": {"x": 40, "y": 0}, "selected": True,
             "data": {"content": "x", "isLoading": True}}
    exclude = ("nodes[*].position", "nodes[*].measured", "nodes[*].selected", "*.isLoading")
    assert diff({"nodes": [node]}, {"nodes": [moved]}, exclude=exclude) == []
    added = diff({"nodes": []}, {"nodes": [node]}, exclude=exclude)
    assert added == [("nodes[block-A]", "added", MISSING,
                      {"id": "block-A", "type": "text", "data": {"content": "x"}})]
    with pytest.raises(TypeError, match="not a path pattern"):
        Rules(exclude=[""])
    with pytest.raises(TypeError, match="list_keys"):
        Rules(list_keys={"nodes": 3})


def test_a_prefix_places_a_list_element_in_its_document_for_the_patterns():
    rules = Rules(exclude=["nodes[*].position"], list_keys={"nodes[*].files": "name"})
    before = {"position": 1, "files": [{"name": "f1", "s": 1}], "_meta": 1}
    after = {"position": 2, "files": [{"name": "f1", "s": 2}], "_meta": 2}
    assert diff(before, after, rules=rules, prefix="nodes[a]") == [
        ("files[f1].s", "changed", 1, 2), ("_meta", "changed", 1, 2)]
    assert diff(before, after, rules=rules) == [("position", "changed", 1, 2),
                                                ("files.0.s", "changed", 1, 2)]


# Lists of nodes whose ids may be missing, repeated, booleans or floats: keyed or not.
node_ids = st.sampled_from(["a", "b", "c", 1, 2]) | st.sampled_from([True, 1.5, None])
nodes = st.lists(
    st.fixed_dictionaries({"v": json_values}, optional={"id": node_ids}), max_size=5
)
workspaces = st.fixed_dictionaries({"nodes": nodes, "x": json_values})


def _keyable(doc) -> bool:
    ids = [n.get("id", None) for n in doc["nodes"]]
    texts = [str(i) for i in ids if type(i) in (str, int)]
    return len(texts) == len(ids) and len(set(texts)) == len(texts)


@settings(max_examples=200, deadline=None)
@given(workspaces, workspaces)
def test_keyed_diff_equals_the_positional_diff_on_lists_without_keys(old, new):
    if _keyable(old) and _keyable(new):
        return  # keyed: the other tests
    assert diff(old, new) == diff(old, new, list_keys={})


unique_nodes = st.lists(
    st.fixed_dictionaries({"id": st.text(alphabet="ab]\\.", min_size=1, max_size=3),
                           "data": st.dictionaries(st.sampled_from("pqr"), json_scalars)}),
    max_size=6, unique_by=lambda n: n["id"],
)


@settings(max_examples=300, deadline=None)
@given(unique_nodes, st.data())
def test_deleting_or_inserting_an_element_changes_only_that_elements_events(items, data):
    before = {"nodes": items}
    after = {"nodes": copy.deepcopy(items)}
    if items and data.draw(st.booleans()):
        gone = after["nodes"].pop(data.draw(st.integers(0, len(items) - 1)))
        expected = [(f"nodes{_bracket(gone['id'])}", "removed", gone, MISSING)]
    else:
        new = {"id": "new", "data": {"p": 1}}
        after["nodes"].insert(data.draw(st.integers(0, len(items))), new)
        expected = [("nodes[new]", "added", MISSING, new)]
    if data.draw(st.booleans()):
        after["nodes"].reverse()  # a move is no change
    assert diff(before, after) == expected
    assert diff(patch(copy.deepcopy(before), expected), after) == []


def _bracket(key: str) -> str:
    return "[" + key.replace("\\", "\\\\").replace("]", "\\]") + "]"


def _excluded(field: str, pattern: str) -> bool:
    """The field or a path above it matches the pattern (the docs/diff.md rule)."""
    regex = re.compile(".*".join(map(re.escape, pattern.split("*"))), re.DOTALL)
    ends = [start for start, _, _ in split_path(field)][1:] + [len(field)]
    return field == "$" and bool(regex.fullmatch("$")) or any(
        regex.fullmatch(field[:end]) for end in ends)


def _keys_inside(value) -> set:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys_inside(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys_inside(v)}
    return set()


@settings(max_examples=150, deadline=None)
@given(doc_pairs(), st.sampled_from(["*.a", "a", "b.*", "*[*]*", "*.0", "c*"]))
def test_excluded_paths_never_appear(pair, pattern):
    old, new = pair
    got = diff(old, new, exclude=[pattern])
    full = diff(old, new)
    assert sorted((f, c) for f, c, _, _ in got) == sorted(
        (f, c) for f, c, _, _ in full if not _excluded(f, pattern))
    if pattern == "*.a":  # and nothing carried holds an "a" below the top
        for field, _, o, n in got:
            for value in (o, n):
                inside = _keys_inside(value) if field != "$" else {
                    k for v in (value.values() if isinstance(value, dict) else [])
                    for k in _keys_inside(v)}
                assert "a" not in inside
