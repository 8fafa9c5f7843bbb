"""graphql_schema.json_codec reads every body as `json.loads` reads it, errors included, and
writes every answer as the same JSON `json.dumps` writes (orjson where it can, the standard
library for the rest)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphql_schema import json_codec

# What orjson refuses and the standard library reads, and what neither reads.
EDGES = [
    '{"n": 123456789012345678901234567890}',  # past 64 bits
    '{"x": NaN, "y": Infinity, "z": -Infinity}',
    '{"s": "\\ud800"}',  # a lone surrogate, escaped
    '{"a": 1, "a": 2}',  # the last one wins
    '{"deep": ' + "[" * 300 + "]" * 300 + "}",
    '{"key": "12345678901234567890123"}',  # 19 digits in a string: the standard library's path
    '{"n": -9223372036854775809, "m": 18446744073709551616}',  # just past 64 bits
    '{"f": 1e400, "g": -0.0, "h": 0.1}',
    '{"t": "caf\\u00e9 \\ud83d\\ude00 \u00e9"}',
    '"just a string"',
]
BROKEN = ["", "{", '{"a": }', "\ufeff{}", '{"a": "\x01"}', "nul", "[" * 1100 + "]" * 1100]


@pytest.mark.parametrize("text", EDGES)
def test_a_body_reads_as_the_standard_library_reads_it(text):
    assert repr(json_codec.loads(text)) == repr(json.loads(text))


@pytest.mark.parametrize("text", BROKEN)
def test_a_body_the_standard_library_refuses_is_refused_alike(text):
    with pytest.raises((ValueError, RecursionError)) as expected:
        json.loads(text)
    with pytest.raises(expected.type):
        json_codec.loads(text)


@pytest.mark.parametrize(
    "value",
    [
        {"n": 2**70},
        {"s": "\ud800"},
        {"t": "café 😀", "u": None, "v": [True, False, 1.5, -0.0]},
    ],
)
def test_an_answer_is_the_json_the_standard_library_writes(value):
    text = json_codec.dumps(value)
    assert isinstance(text, str)  # a WebSocket message is a text frame
    assert repr(json.loads(text)) == repr(json.loads(json.dumps(value)))


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@given(JSON_VALUES)
@settings(max_examples=500, deadline=None)
def test_any_value_round_trips_as_the_standard_library_does(value):
    text = json.dumps(value)
    assert repr(json_codec.loads(text)) == repr(json.loads(text))
    assert repr(json.loads(json_codec.dumps(value))) == repr(json.loads(json.dumps(value)))
