"""The field-level diff: contract paths, JSON semantics, and agreement with DeepDiff."""

from __future__ import annotations

import dataclasses
import enum
from datetime import UTC, datetime

import orjson
from deepdiff import DeepDiff
from hypothesis import given, settings
from instrument_support import doc_pairs, json_docs

from audit.diff import MISSING, diff


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
