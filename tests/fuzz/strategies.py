"""What the schema fuzzer sends: documents from hypothesis-graphql, with valid-looking and hostile
values for every scalar, sometimes as variables, and hostile HTTP bodies around them.

Each draw is a `Request`: the exact bytes of one POST /graphql, so a failure prints what was sent.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import graphql
from graphql import (
    ArgumentNode,
    DocumentNode,
    GraphQLSchema,
    NameNode,
    OperationDefinitionNode,
    TypeInfo,
    TypeInfoVisitor,
    ValueNode,
    VariableDefinitionNode,
    VariableNode,
    Visitor,
    parse_type,
    print_ast,
    value_from_ast_untyped,
    visit,
)
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes

JSON = "application/json"
MAX_BODY_BYTES = 1024 * 1024  # API.md's default TALLY_MAX_BODY_BYTES


@dataclasses.dataclass(frozen=True)
class Request:
    """One POST /graphql body; `expect` is API.md's answer (status, code) when it names one."""

    label: str
    body: bytes
    content_type: str = JSON
    expect: tuple[int, str] | None = None

    def text(self, limit: int = 600) -> str:
        text = self.body.decode("utf-8", "backslashreplace")
        return text if len(text) <= limit else f"{text[:limit]}… ({len(self.body):,} bytes)"


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Known values the generator mixes in so lookups hit real rows (the caller's own and
    another workspace's ids) and replays hit real idempotency keys."""

    own_ids: Mapping[str, str]  # {"workbook": id, "charge": id, ...}
    other_ids: Mapping[str, str] = dataclasses.field(default_factory=dict)
    strings: Sequence[str] = ()

    def of_kind(self, kind: str) -> st.SearchStrategy[ValueNode]:
        """An id argument whose kind is known (a workbookId): mostly the caller's row of that
        kind, then another workspace's, then any id at all."""
        own = [i for k, i in self.own_ids.items() if k == kind]
        other = [i for k, i in self.other_ids.items() if k == kind]
        choices = [(1, ids(self))]
        choices += [(4, st.sampled_from(own).map(nodes.String))] if own else []
        choices += [(2, st.sampled_from(other).map(nodes.String))] if other else []
        return weighted(*choices)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """`one_of` with integer weights (one_of alone picks branches about evenly)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


# -- scalar values --------------------------------------------------------------------------

VALID_DECIMALS = ("0", "1", "0.5", "5", "12.5", "0.0001", "100", "2500", "99999")
NON_ASCII_DECIMALS = ("١٢", "١٢.٥", "１２", "𝟏𝟐")  # Arabic-Indic, fullwidth, mathematical digits
HOSTILE_DECIMALS = (
    "-1", "-0", "-0.0001", "1e5", "1E+0", "12.34567", " 5 ", "5\n",
    "", " ", "NaN", "Infinity", "-Infinity", "+5", "0x10", "1_000", ".5", "5.", "1,5",
    "9" * 18, "9" * 19, "9" * 40, "0." + "0" * 17 + "1", "1" + "0" * 12, "1000000000000.0001",
    "1" * 5000,
)  # fmt: skip


def _scaled_decimal(pair: tuple[int, int]) -> str:
    digits, places = pair
    return format(Decimal(digits).scaleb(-places), "f")


def _odd_nodes() -> st.SearchStrategy[ValueNode]:
    """Literals of the wrong kind for a string scalar: JSON numbers, booleans, lists, objects."""
    return st.one_of(
        st.integers().map(nodes.Int),
        st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
        st.booleans().map(nodes.Boolean),
        st.just(nodes.List([nodes.String("1")])),
        st.just(nodes.Object([])),
    )


def decimals() -> st.SearchStrategy[ValueNode]:
    scaled = st.tuples(st.integers(-(10**20), 10**20), st.integers(0, 20)).map(_scaled_decimal)
    return weighted(
        (3, st.sampled_from(VALID_DECIMALS).map(nodes.String)),
        (2, st.sampled_from(HOSTILE_DECIMALS).map(nodes.String)),
        (1, st.sampled_from(NON_ASCII_DECIMALS).map(nodes.String)),
        (2, scaled.map(nodes.String)),
        (1, _odd_nodes()),
    )


ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12)),
     timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(seconds=1))]
)  # fmt: skip
EDGE_DATETIMES = (
    "0001-01-01T00:00:00+00:00", "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00",
    "9999-12-31T23:59:59.999999-12:00", "9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59",
    "2025-01-31T10:00:00Z", "2025-01-31T10:00:00", "2025-01-31", "2025-01-31T10:00:00+25:00",
    "2025-13-01T00:00:00Z", "2025-02-29T00:00:00Z", "2024-02-29T00:00:00Z", "1969-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z", "2199-12-31T23:59:59Z", "2200-01-01T00:00:00Z", "", "now", "today",
    "２０２５-01-01T00:00:00Z", "٢٠٢٥-01-01T00:00:00Z", "2025-01-01T00:00:00.1234567Z",
    "2025-01-01 00:00:00Z", "20250101T000000Z", "2025-W01-1T00:00Z", "2025-001T00:00Z",
    "T00:00Z", "1735689600",
)  # fmt: skip


def datetimes() -> st.SearchStrategy[ValueNode]:
    recent = st.datetimes(datetime(2024, 1, 1), datetime(2026, 12, 31), timezones=ZONES)
    return weighted(
        (6, recent.map(datetime.isoformat).map(nodes.String)),
        (2, st.datetimes(timezones=ZONES).map(datetime.isoformat).map(nodes.String)),
        (1, st.datetimes().map(datetime.isoformat).map(nodes.String)),  # naive: no zone
        (3, st.sampled_from(EDGE_DATETIMES).map(nodes.String)),
        (1, _odd_nodes()),
    )


def dates() -> st.SearchStrategy[ValueNode]:
    edge = ("2025-01-31", "0001-01-01", "9999-12-31", "2025-02-30", "", "2025-01-31T00:00Z")
    return weighted(
        (2, st.dates(date(2024, 1, 1), date(2026, 12, 31)).map(date.isoformat).map(nodes.String)),
        (1, st.dates().map(date.isoformat).map(nodes.String)),
        (2, st.sampled_from(edge).map(nodes.String)),
        (1, _odd_nodes()),
    )


def _object(fields: dict[str, ValueNode]) -> ValueNode:
    return nodes.Object(
        [graphql.ObjectFieldNode(name=NameNode(value=k), value=v) for k, v in fields.items()]
    )


def json_values() -> st.SearchStrategy[ValueNode]:
    leaves = st.one_of(
        st.just(nodes.Null),
        st.booleans().map(nodes.Boolean),
        st.integers().map(nodes.Int),
        st.text(max_size=20).map(nodes.String),
    )
    names = st.from_regex(r"[_A-Za-z][_A-Za-z0-9]{0,8}", fullmatch=True)
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=4).map(nodes.List)
            | st.dictionaries(names, inner, max_size=4).map(_object)
        ),
        max_leaves=12,
    )


KNOWN_STRINGS = (
    "linkedin", "profile", "hunter", "email", "zerobounce", "email_validation", "apollo",
    "phone", "clearbit", "company", "free", "launch", "growth", "enterprise", "small", "large",
    "Leads", "table-1", "fuzz-key-1", "fuzz-key-2", "fuzz-key-3", "ENRICHMENT", "DATA_CREDITS",
)  # fmt: skip
HOSTILE_STRINGS = (
    "", " ", "\x00", "a\x00b", "\ud800", "a" * 65, "a" * 201, "a" * 256, "a" * 501, "é" * 300,
    "\u202e", "' OR 1=1 --", "%s%n", "\\", '"', "\n", "null", "😀" * 10, "ＡＢＣ",
)  # fmt: skip


def strings(known: Sequence[str]) -> st.SearchStrategy[ValueNode]:
    return weighted(
        (3, st.sampled_from((*KNOWN_STRINGS, *known)).map(nodes.String)),
        (2, st.sampled_from(HOSTILE_STRINGS).map(nodes.String)),
        (2, st.text(max_size=20).map(nodes.String)),
    )


HOSTILE_IDS = (
    "", " ", "0", "-1", "00000000-0000-0000-0000-000000000000", "null", "' OR '1'='1", "%",
    "*", "\x00", "\ud800", "x" * 10_000, "١", "ffffffff-ffff-ffff-ffff-ffffffffffff",
)  # fmt: skip


def _id_spellings(value: str) -> list[str]:
    """The same id as uuid.UUID() also reads it: cased, bare, braced, as a URN."""
    bare = value.replace("-", "")
    return [value, value.upper(), bare, f"{{{value}}}", f"urn:uuid:{value}", f" {value} "]


def ids(vocabulary: Vocabulary) -> st.SearchStrategy[ValueNode]:
    """Mostly a real row, the caller's or another workspace's, so the lookup answers, not the
    parse; then the same ids spelled otherwise, random UUIDs and junk."""
    choices: list[tuple[int, st.SearchStrategy[Any]]] = [
        (1, st.uuids().map(str).map(nodes.String)),
        (1, st.sampled_from(HOSTILE_IDS).map(nodes.String)),
        (1, st.text(max_size=40).map(nodes.String)),
        (1, st.integers().map(nodes.Int)),
    ]
    for weight, known in ((4, vocabulary.own_ids), (3, vocabulary.other_ids)):
        if known:
            # In kind order, not by value: the same draw picks the same kind of row every run.
            choices.append((weight, st.sampled_from(list(known.values())).map(nodes.String)))
    spelled = [
        s
        for value in dict.fromkeys([*vocabulary.own_ids.values(), *vocabulary.other_ids.values()])
        for s in _id_spellings(value)
    ]
    if spelled:
        choices.append((2, st.sampled_from(spelled).map(nodes.String)))
    return weighted(*choices)


def ints() -> st.SearchStrategy[ValueNode]:
    edges = (0, 1, 10, 50, 100, 1000, 1001, 2500, 1_000_000, 1_000_001, 100_000_000, -1,
             2**31 - 1, -(2**31))  # fmt: skip
    return weighted(
        (4, st.integers(0, 10).map(nodes.Int)),
        (4, st.sampled_from(edges).map(nodes.Int)),
        (2, st.integers(-(2**31), 2**31 - 1).map(nodes.Int)),
        (1, st.sampled_from((2**31, 2**53, -(2**63), 10**30)).map(nodes.Int)),  # not an Int
    )


def scalar_strategies(
    schema: GraphQLSchema, vocabulary: Vocabulary
) -> dict[str, st.SearchStrategy[ValueNode]]:
    """A strategy for every scalar the schema has; an unknown custom one gets strings, so the
    fuzz keeps running while the schema grows."""
    known = {
        "Decimal": decimals(),
        "DateTime": datetimes(),
        "Date": dates(),
        "JSON": json_values(),
        "ID": ids(vocabulary),
        "String": strings(vocabulary.strings),
        "Int": ints(),
    }
    scalars = {
        name for name, t in schema.type_map.items() if isinstance(t, graphql.GraphQLScalarType)
    }
    extra = scalars - known.keys() - {"Float", "Boolean"}
    return {**known, **{name: strings(vocabulary.strings) for name in extra}}


# -- documents ------------------------------------------------------------------------------


def _same(document: DocumentNode) -> DocumentNode:
    return document


def documents(schema: GraphQLSchema, vocabulary: Vocabulary) -> st.SearchStrategy[DocumentNode]:
    """Mostly one root field a document (each field gets its share of cases), sometimes any
    number of them, sometimes a document with one schema violation."""
    scalars = scalar_strategies(schema, vocabulary)
    roots = [
        *(schema.query_type.fields if schema.query_type else ()),
        *(schema.mutation_type.fields if schema.mutation_type else ()),
    ]
    one_root = {
        name: from_schema(schema, fields=[name], custom_scalars=scalars, print_ast=_same)
        for name in roots
    }
    return weighted(
        (8, st.sampled_from(sorted(one_root)).flatmap(one_root.__getitem__)),
        (1, from_schema(schema, custom_scalars=scalars, print_ast=_same)),
        (1, from_schema(schema, custom_scalars=scalars, print_ast=_same, mode=Mode.NEGATIVE)),
    )


class _Hoist(Visitor):
    """Turns every argument written into the document into a variable, as clients send them."""

    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.definitions: list[VariableDefinitionNode] = []
        self.values: dict[str, Any] = {}

    def enter_argument(self, node: ArgumentNode, *_: Any) -> ArgumentNode | None:
        argument = self.type_info.get_argument()
        if argument is None or isinstance(node.value, VariableNode):
            return None
        name = f"v{len(self.definitions)}"
        variable = VariableNode(name=NameNode(value=name))
        self.values[name] = value_from_ast_untyped(node.value)
        self.definitions.append(
            VariableDefinitionNode(variable=variable, type=parse_type(str(argument.type)))
        )
        return ArgumentNode(name=node.name, value=variable)


def hoist(schema: GraphQLSchema, document: DocumentNode) -> tuple[DocumentNode, dict[str, Any]]:
    type_info = TypeInfo(schema)
    hoister = _Hoist(type_info)
    rewritten = visit(document, TypeInfoVisitor(type_info, hoister))
    definitions = [
        dataclasses.replace(d, variable_definitions=tuple(hoister.definitions))
        if isinstance(d, OperationDefinitionNode)
        else d
        for d in rewritten.definitions
    ]
    return dataclasses.replace(rewritten, definitions=tuple(definitions)), hoister.values


def encode(payload: Any) -> bytes:
    # ensure_ascii: a lone surrogate travels as the JSON escape "\ud800", as a browser sends it.
    return json.dumps(payload, ensure_ascii=True, allow_nan=False).encode()


def graphql_request(schema: GraphQLSchema, document: DocumentNode, as_variables: bool) -> Request:
    if not as_variables:
        return Request("document", encode({"query": print_ast(document)}))
    hoisted, variables = hoist(schema, document)
    return Request(
        "document, arguments as variables",
        encode({"query": print_ast(hoisted), "variables": variables}),
    )


# -- hostile HTTP bodies ----------------------------------------------------------------------

PLANS = "{ plans { code } }"
WORKSPACE = "{ workspace { id name } }"


def _nested_json(depth: int) -> bytes:
    """Valid JSON nested deeper than Python's json module recurses."""
    return (
        b'{"query": "{ plans { code } }", "variables": {"x": ' + b"[" * depth + b"]" * depth + b"}}"
    )


def _aliases(count: int) -> str:
    return "{ " + " ".join(f"a{i}: plans {{ code }}" for i in range(count)) + " }"


def _deep_introspection(levels: int) -> str:
    return (
        "{ __schema { types { fields { type "
        + "{ ofType " * levels
        + "{ name }"
        + " }" * levels
        + " } } } }"
    )


def _many_tokens(count: int) -> str:
    """A document of about `count` tokens whose validation and execution stay linear."""
    days = " ".join(["DAY"] * count)
    return (
        '{ usageHistory(from: "2025-01-01T00:00:00Z", to: "2025-01-02T00:00:00Z", '
        f"groupBy: [{days}]) {{ actions }} }}"
    )


def envelopes() -> list[Request]:
    """Bodies that are not a well-formed GraphQL-over-HTTP request; `expect` where API.md says
    which answer (HTTP, health and operations)."""
    bad = (400, "BAD_REQUEST")
    too_large = (413, "PAYLOAD_TOO_LARGE")
    padding = "x" * (MAX_BODY_BYTES + 1024)
    return [
        Request("empty body", b"", expect=bad),
        Request("truncated JSON", b'{"query": "{ plans { code } }"', expect=bad),
        Request("not JSON", b"query { plans { code } }", expect=bad),
        Request("not UTF-8", b'{"query": "{ plans { code } }", "x": "\xff\xfe"}', expect=bad),
        Request("UTF-16", encode({"query": PLANS}).decode().encode("utf-16"), expect=bad),
        Request("JSON array", encode([{"query": PLANS}]), expect=bad),
        Request("JSON null", b"null", expect=bad),
        Request("JSON string", encode(PLANS), expect=bad),
        Request("JSON number", b"42", expect=bad),
        Request("NaN in JSON", b'{"query": "{ plans { code } }", "variables": {"x": NaN}}'),
        Request("JSON nested 100,000 deep", _nested_json(100_000)),
        Request("query is a number", b'{"query": 5}'),
        Request("query is null", b'{"query": null}'),
        Request("no query", b"{}"),
        Request("variables a string", encode({"query": WORKSPACE, "variables": "x"})),
        Request("variables a list", encode({"query": WORKSPACE, "variables": [1]})),
        Request("unknown operationName", encode({"query": WORKSPACE, "operationName": "Nope"})),
        Request(
            "lone surrogate operationName", encode({"query": PLANS, "operationName": "\ud800"})
        ),
        Request("lone surrogate query", encode({"query": "{ plans { code } }\ud800"})),
        Request(
            "two operations, no operationName",
            encode({"query": "query A { plans { code } } query B { workspace { id } }"}),
        ),
        Request("extensions a number", encode({"query": PLANS, "extensions": 5})),
        Request("subscription", encode({"query": "subscription { workspaceUpdated { id } }"})),
        Request("text/plain", encode({"query": WORKSPACE}), content_type="text/plain"),
        Request(
            "form-encoded",
            b"query=%7B+workspace+%7B+id+%7D+%7D",
            content_type="application/x-www-form-urlencoded",
        ),
        Request("over 1 MiB", encode({"query": PLANS, "padding": padding}), expect=too_large),
        Request("31 aliases", encode({"query": _aliases(31)}), expect=bad),
        Request("introspection 40 levels deep", encode({"query": _deep_introspection(40)})),
        Request("100,000 tokens", encode({"query": _many_tokens(100_000)}), expect=bad),
    ]


# Authorization headers sent by a caller without a valid key.
NO_KEY_HEADERS = (
    None, "", "Bearer", "Bearer ", "Basic Zm9vOmJhcg==", "bearer tly_not-a-key", "Bearer  ",
    "Bearer tly_" + "x" * 600, "Token abc", "Bearer tly_op_", "Bearer \t",
)  # fmt: skip
