"""The fast variables path (graphql_schema.perf.variables): a batch's items are read exactly
as graphql-core reads them, only faster.

`graphql_schema.perf.variables` coerces list variables with code compiled per type. Every case
here is answered by graphql-core too: the fast path must give an equal value of the same types,
or step aside (`_Invalid`) exactly where graphql-core finds the value invalid.
"""

from __future__ import annotations

import random
from decimal import Decimal
from enum import Enum
from typing import Any

import pytest
from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLFloat,
    GraphQLID,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLString,
    Undefined,
    parse,
)
from graphql.utilities import coerce_input_value
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graphql_schema.perf.variables import (
    FastVariablesExecutionContext,
    _Invalid,
    compile_coercer,
)
from graphql_schema.schema import schema as tally_schema

TALLY = tally_schema._schema
RECORD = TALLY.get_type("RecordUsageInput")


def _money(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise TypeError("amounts are strings")
    return Decimal(value)


MONEY = GraphQLScalarType("Money", parse_value=_money)
COLOR = GraphQLEnumType("Color", {"RED": 1, "GREEN": 2})


class Shade(Enum):
    DARK = "dark"


SHADE = GraphQLEnumType("Shade", Shade)
POINT = GraphQLInputObjectType(
    "Point",
    {
        "x": GraphQLInputField(GraphQLNonNull(GraphQLInt)),
        "y": GraphQLInputField(GraphQLInt, default_value=7),
        "label": GraphQLInputField(GraphQLString, out_name="title"),
        "price": GraphQLInputField(MONEY),
        "color": GraphQLInputField(COLOR),
        "shade": GraphQLInputField(SHADE),
        "flag": GraphQLInputField(GraphQLNonNull(GraphQLBoolean), default_value=False),
        "ratio": GraphQLInputField(GraphQLFloat),
        "ref": GraphQLInputField(GraphQLID),
        "tags": GraphQLInputField(GraphQLList(GraphQLNonNull(GraphQLString))),
    },
    out_type=lambda d: ("Point", tuple(sorted(d.items()))),
)
TYPES = {
    "[Point!]!": GraphQLNonNull(GraphQLList(GraphQLNonNull(POINT))),
    "[Point]": GraphQLList(POINT),
    "[[Int]]": GraphQLList(GraphQLList(GraphQLInt)),
    "[RecordUsageInput!]!": GraphQLNonNull(GraphQLList(GraphQLNonNull(RECORD))),
}

GOOD = {"x": 1}
CASES: list[tuple[str, Any]] = [
    ("[Point!]!", [GOOD]),
    ("[Point!]!", GOOD),  # a list of one
    ("[Point!]!", []),
    ("[Point!]!", None),
    ("[Point!]!", [None]),
    ("[Point!]!", [{}]),  # x missing
    ("[Point!]!", [{"x": None}]),
    ("[Point!]!", [{"x": 1, "y": None}]),  # explicit null beats the default
    ("[Point!]!", [{"x": 1, "flag": None}]),  # non-null with a default, given null
    ("[Point!]!", [{"x": 1, "flag": True, "y": 3, "label": "a", "ratio": 1}]),
    ("[Point!]!", [{"x": True}]),  # a bool is not an Int
    ("[Point!]!", [{"x": 1.0}]),
    ("[Point!]!", [{"x": 1.5}]),
    ("[Point!]!", [{"x": 2**31}]),  # past Int's 32 bits
    ("[Point!]!", [{"x": "1"}]),
    ("[Point!]!", [{"x": 1, "z": 2}]),  # a field the type does not have
    ("[Point!]!", [{"x": 1, "z": Undefined}]),  # ... skipped when Undefined
    ("[Point!]!", [{"x": 1, "price": "0.5"}, {"x": 2, "price": 0.5}]),  # custom scalar raises
    ("[Point!]!", [{"x": 1, "color": "RED"}, {"x": 1, "color": "BLUE"}]),
    ("[Point!]!", [{"x": 1, "color": 1}]),
    ("[Point!]!", [{"x": 1, "shade": "DARK"}]),
    ("[Point!]!", [{"x": 1, "ref": 12}, {"x": 1, "ref": "12"}, {"x": 1, "ref": 1.5}]),
    ("[Point!]!", [{"x": 1, "tags": "one"}]),  # a list of one, inside
    ("[Point!]!", [{"x": 1, "tags": ["a", None]}]),
    ("[Point!]!", [{"x": 1, "tags": {"a": 1}}]),
    ("[Point!]!", ["x"]),
    ("[Point!]!", "x"),
    ("[Point!]!", [[GOOD]]),
    ("[Point!]!", (GOOD, GOOD)),
    ("[Point]", [None, GOOD]),
    ("[Point]", None),
    ("[[Int]]", [[1, None], 2, None]),
    ("[[Int]]", [[1, "2"]]),
    ("[[Int]]", [[[1]]]),
]


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (True == 1, yet they differ here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _check(type_name: str, value: Any) -> bool:
    """Asserts the two agree; True when the value is valid."""
    type_ = TYPES[type_name]
    expected = coerce_input_value(value, type_)
    coerce = compile_coercer(type_)
    assert coerce is not None
    try:
        got = coerce(value)
    except _Invalid:
        assert expected is Undefined, (type_name, value, expected)
        return False
    assert expected is not Undefined, (type_name, value, got)
    assert _same(got, expected), (type_name, value, got, expected)
    return True


@pytest.mark.parametrize(("type_name", "value"), CASES)
def test_the_fast_path_reads_each_value_as_graphql_core_does(type_name, value):
    _check(type_name, value)


def test_valid_and_invalid_cases_are_both_covered():
    outcomes = [_check(t, v) for t, v in CASES]
    assert outcomes.count(True) >= 10 and outcomes.count(False) >= 10


def _item(i: int) -> dict[str, Any]:
    return {
        "workbookId": "0b8c8d5e-8f1e-4f5a-9a53-2f2b3c4d5e6f",
        "kind": "ENRICHMENT",
        "provider": "linkedin",
        "dataType": "profile",
        "results": 1,
        "idempotencyKey": f"k-{i}",
        "tableId": "t",
        "runId": "1b8c8d5e-8f1e-4f5a-9a53-2f2b3c4d5e6f",
    }


ODD_VALUES = [None, True, False, 0, 1, -1, 2**31, 1.0, 1.5, "", "x", "AI", "2025-01-31T10:00:00Z"]
ODD_VALUES += [[], [1], {}, {"a": 1}, "ENRICHMENT", "12", Undefined]
FIELDS = [*_item(0), "ownApiKey", "sentAt", "model", "inputTokens", "outputTokens", "nope"]


def test_thousands_of_mutated_batch_items_read_alike():
    """recordUsageBatch's real input type, with fields dropped, added and given odd values."""
    rng = random.Random(20261202)
    valid = 0
    for _ in range(3000):
        items = [_item(i) for i in range(rng.randint(1, 4))]
        for item in items:
            for _ in range(rng.randint(0, 3)):
                name = rng.choice(FIELDS)
                if rng.random() < 0.2:
                    item.pop(name, None)
                else:
                    item[name] = rng.choice(ODD_VALUES)
        valid += _check("[RecordUsageInput!]!", items)
    assert 300 < valid < 2700, valid  # both kinds were exercised


def test_types_it_does_not_take_are_left_to_graphql_core():
    one_of = GraphQLInputObjectType(
        "OneOf", {"a": GraphQLInputField(GraphQLInt), "b": GraphQLInputField(GraphQLInt)},
        is_one_of=True,
    )  # fmt: skip
    tree = GraphQLInputObjectType(
        "Tree", lambda: {"children": GraphQLInputField(GraphQLList(tree))}
    )
    assert compile_coercer(GraphQLList(one_of)) is None
    assert compile_coercer(GraphQLList(tree)) is None


DOC = parse(
    """mutation($items: [RecordUsageInput!]!, $n: Int, $more: [Int!] = [1]) {
      recordUsageBatch(input: {items: $items}) { charged } }"""
)


def _build(cls: type, variables: dict[str, Any]) -> Any:
    return cls.build(TALLY, DOC, raw_variable_values=variables)


@pytest.mark.parametrize(
    "variables",
    [
        {"items": [_item(0), _item(1)]},
        {"items": [_item(0)], "n": 3},
        {"items": [_item(0)], "more": [2, 3]},
        {"items": [_item(0)], "more": None},
        {"items": _item(0)},
        {"items": [_item(0), {**_item(1), "results": "1"}]},  # invalid: graphql-core says why
        {"items": [{**_item(0), "kind": "NOPE"}], "n": "x"},
        {"items": [_item(0)], "n": "x"},  # the other variable is the invalid one
        {"items": None},
        {},
    ],
)
def test_requests_build_alike_with_the_same_values_or_the_same_errors(variables):
    fast = _build(FastVariablesExecutionContext, variables)
    plain = _build(StrawberryGraphQLCoreExecutionContext, variables)
    if isinstance(plain, list):
        assert isinstance(fast, list)
        assert [e.formatted for e in fast] == [e.formatted for e in plain]
        return
    assert _same(fast.variable_values.coerced, plain.variable_values.coerced)
    assert _sources(fast) == _sources(plain)


def _sources(built: Any) -> dict[str, tuple[str, str, Any]]:
    # Each build makes its own signature objects: compare what they say.
    return {
        name: (source.signature.name, str(source.signature.type), source.value)
        for name, source in built.variable_values.sources.items()
    }


def test_the_served_schema_uses_the_fast_path():
    # Through graphql_schema.perf.output's context, which adds the output side to this one.
    assert issubclass(tally_schema.execution_context_class, FastVariablesExecutionContext)
    assert tally_schema.execution_context_class.build.__func__ is (
        FastVariablesExecutionContext.build.__func__
    )


@pytest.mark.parametrize("values", [[2, 3], [2, "x"], [[2]]])
def test_an_iterator_is_left_to_graphql_core_unread(values):
    """Python callers may pass an iterator, which can be read once: the fast path must not."""
    fast = _build(FastVariablesExecutionContext, {"items": [_item(0)], "more": (v for v in values)})
    plain = _build(
        StrawberryGraphQLCoreExecutionContext, {"items": [_item(0)], "more": (v for v in values)}
    )
    if isinstance(plain, list):
        assert [e.formatted for e in fast] == [e.formatted for e in plain]
    else:
        assert fast.variable_values.coerced == plain.variable_values.coerced
