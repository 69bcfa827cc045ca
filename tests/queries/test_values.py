"""How a check reads a stored value back (`queries.values.parse_value`): as `json.loads` reads
it, the text itself where it is not JSON."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from queries.values import parse_value


def _reference(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


@pytest.mark.parametrize("text, expected", [
    ('"v3"', "v3"),
    ('{"a":[1,2.5,null,true]}', {"a": [1, 2.5, None, True]}),
    ("123456789012345678901234567890", 123456789012345678901234567890),  # every digit kept
    (' "padded" ', "padded"),          # whitespace around the value
    ("1 2", "1 2"),                    # two values: not JSON, so the text
    ('"unterminated', '"unterminated'),
    ("", ""),
    ("not json", "not json"),
])
def test_a_value_reads_as_json_loads_reads_it(text, expected):
    assert parse_value(text) == expected


def test_nan_and_infinity_become_floats_and_none_stays_none():
    assert math.isnan(parse_value("NaN"))
    assert parse_value("-Infinity") == float("-inf")
    assert parse_value(None) is None


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(_JSON, st.sampled_from(["", " ", "\n", "x", " 1"]), st.sampled_from(["", " ", "\t"]))
def test_any_text_reads_as_json_loads_reads_it(value, after, before):
    text = before + json.dumps(value, separators=(",", ":")) + after
    assert parse_value(text) == _reference(text)
