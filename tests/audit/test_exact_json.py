"""Integers beyond 64 bits stay exact through orjson's fast path; what JSON refuses, refused."""

from __future__ import annotations

import json

import orjson
import pytest

from audit import exact_json

BIG = 123456789012345678901234  # orjson reads it as 1.2345678901234568e+23


def test_long_integers_read_and_written_exactly_at_any_depth():
    text = f'{{"a": {BIG}, "b": [1.5, -{BIG}, {{"c": 18446744073709551616}}]}}'
    assert orjson.loads(text)["a"] != BIG  # why this module exists
    value = exact_json.loads(text)
    assert value == {"a": BIG, "b": [1.5, -BIG, {"c": 2**64}]}
    assert exact_json.loads(text.encode()) == value
    written = exact_json.dumps(value, option=orjson.OPT_SORT_KEYS)
    assert json.loads(written) == value and written.startswith(b'{"a":123456789012345678901234,')


def test_what_orjson_writes_itself_is_written_as_orjson_writes_it():
    value = {"edge": [2**64 - 1, -(2**63)], "t": (1, 2), "s": "x"}
    assert exact_json.dumps(value) == orjson.dumps(value)
    with pytest.raises(TypeError):
        exact_json.dumps({BIG})  # a set without a default is refused, as orjson refuses it
    assert exact_json.dumps({BIG}, default=sorted) == f"[{BIG}]".encode()  # the default's too


@pytest.mark.parametrize("text, reason", [
    (f"[NaN, {BIG}]", "NaN or Infinity"),
    (f"[1e400, {BIG}]", "out of range"),
    (f"[{'9' * 400}]", "out of range"),
    (f"[{BIG}", "Expecting"),
    (b"[\xff, " + str(BIG).encode() + b"]", "utf-8"),
    ("[" * 100_000 + str(BIG), "nested too deep"),
    (f'["\\ud800", {BIG}]', "surrogates not allowed"),  # orjson refuses it; json takes it
])
def test_the_slow_way_refuses_what_orjson_refuses_with_orjsons_error(text, reason):
    with pytest.raises(orjson.JSONDecodeError, match=reason):
        exact_json.loads(text)


def test_a_surrogate_pair_and_text_near_one_are_taken():
    text = f'["\\uD83D\\uDE00", "\\ud7ff", {BIG}]'
    assert exact_json.loads(text) == ["\U0001F600", "\ud7ff", BIG]
