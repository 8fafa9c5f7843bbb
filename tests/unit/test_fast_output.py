"""The fast output path (graphql_schema.perf.output): answers are completed exactly as
graphql-core completes them, only faster.

`graphql_schema.perf.output` completes objects whose selected fields are plain leaf reads
itself. Every query here runs twice, through that context and through strawberry's own, and
the two answers must be equal: data, and errors with their messages, paths and locations.
Counters check that the fast path did take the objects it should, and left the others.
"""

from __future__ import annotations

import decimal
import enum
import gc
import random
import warnings
from datetime import UTC, datetime
from typing import Annotated, Any, NewType

import pytest
import strawberry
from graphql import Undefined
from strawberry.extensions import FieldExtension, SchemaExtension
from strawberry.permission import BasePermission
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

from graphql_schema.perf.output import FastOutputExecutionContext
from graphql_schema.scalars import SCALAR_MAP
from graphql_schema.schema import schema as tally_schema


class Counted(FastOutputExecutionContext):
    """Counts objects the fast path completed, and objects it handed back.

    A list is tried whole first: at the first object handed back, graphql-core completes the
    whole list again, and each of its objects is tried once more on its own. So in a list of
    4 whose second object fails, the counts are 4 taken (1 + 3) and 2 handed back."""

    taken = 0
    handed_back = 0

    def _complete_plain(self, plan: Any, source: Any) -> dict[str, Any]:
        try:
            result = super()._complete_plain(plan, source)
        except Exception:
            Counted.handed_back += 1
            raise
        Counted.taken += 1
        return result


@strawberry.enum
class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


def _loose(value: Any) -> Any:
    """A scalar that prints anything, and gives nothing for "nothing"."""
    return None if value == "nothing" else repr(value)


Loose = NewType("Loose", object)
SCALARS = {
    **SCALAR_MAP,
    Loose: strawberry.scalar(name="Loose", serialize=_loose, parse_value=lambda v: v),
}


class Never(BasePermission):
    message = "not allowed"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return False


class Upper(FieldExtension):
    def resolve(self, next_: Any, source: Any, info: strawberry.Info, **kwargs: Any) -> Any:
        return next_(source, info, **kwargs).upper()


@strawberry.type
class Item:
    name: str
    count: int
    ratio: float
    flag: bool
    ident: strawberry.ID
    color: Color
    amount: decimal.Decimal
    at: datetime
    note: str | None = None
    raw: strawberry.Private[Any] = None

    @strawberry.field
    def doubled(self) -> int:
        return self.count * 2

    @strawberry.field
    def maybe(self) -> str | None:
        return self.raw

    @strawberry.field
    def strict(self) -> str:
        return self.raw  # None here is an error in a non-null field

    @strawberry.field
    def number(self) -> int:
        return self.raw  # a string here does not coerce to Int

    @strawberry.field
    def boom(self) -> str:
        raise ValueError(f"boom {self.name}")

    @strawberry.field
    def soft_boom(self) -> str | None:
        raise ValueError(f"soft boom {self.name}")

    @strawberry.field
    def returned_error(self) -> str | None:
        return ValueError(f"returned {self.name}")  # type: ignore[return-value]

    @strawberry.field
    def with_info(self, info: strawberry.Info) -> str:
        return info.field_name

    @strawberry.field
    def with_arg(self, times: int = 1) -> str:
        return self.name * times

    @strawberry.field
    async def later(self) -> str:
        return self.name + "!"

    @strawberry.field(permission_classes=[Never])
    def secret(self) -> str | None:
        return "hidden"

    @strawberry.field(extensions=[Upper()])
    def shout(self) -> str:
        return self.name

    @strawberry.field
    def colors(self) -> list[Color]:
        return [self.color]

    @strawberry.field
    def static() -> str:  # no self: strawberry calls it with nothing
        return "static"


@strawberry.type
class Odd:
    """Values that only a scalar as loose as `Loose` would let through."""

    name: str
    value: Loose | None

    @strawberry.field
    def computed(self) -> Loose | None:
        return self.value


async def _later(text: str) -> str:
    return text


@strawberry.type
class Other:
    code: str
    child: Item | None = None


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Pet(Named):
    legs: int


Either = Annotated[Item | Other, strawberry.union("Either")]


def _item(n: int, raw: Any = "raw", note: str | None = None) -> Item:
    return Item(
        name=f"n{n}",
        count=n,
        ratio=n / 4,
        flag=n % 2 == 0,
        ident=strawberry.ID(f"id-{n}"),
        color=Color.RED if n % 2 else Color.GREEN,
        amount=decimal.Decimal(n) / 8,
        at=datetime(2026, 1, 1 + n % 28, tzinfo=UTC),
        note=note,
        raw=raw,
    )


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return [_item(n, note=None if n % 3 else f"note {n}") for n in range(6)]

    @strawberry.field
    def odd(self) -> list[Item | None]:
        return [_item(0), _item(1, raw=None), _item(2, raw="x"), _item(3, raw=7)]

    @strawberry.field
    def strict_items(self) -> list[Item]:
        return [_item(0), _item(1, raw=None)]

    @strawberry.field
    def mixed(self) -> list[Either]:
        return [_item(1), Other(code="c1", child=_item(5)), _item(2), Other(code="c2")]

    @strawberry.field
    def holes(self) -> list[Item | None]:
        return [_item(1), None, _item(2)]

    @strawberry.field
    def missing(self) -> list[Item]:
        return [_item(1), None]  # type: ignore[list-item]

    @strawberry.field
    def wrong(self) -> list[Either]:
        return [_item(1), "not an object"]  # type: ignore[list-item]

    @strawberry.field
    def pets(self) -> list[Named]:
        return [Pet(name="rex", legs=4), Pet(name="tweety", legs=2)]

    @strawberry.field
    def one(self) -> Item:
        return _item(9)

    @strawberry.field
    def loose(self) -> list[Odd]:
        values = [1, "nothing", ValueError("returned"), "fine", Undefined]
        return [Odd(name=f"o{n}", value=v) for n, v in enumerate(values)]

    @strawberry.field
    def pending(self) -> list[Odd]:
        """A plain field holding an awaitable: graphql-core awaits it."""
        return [Odd(name="p", value=_later("done"))]


def _pair(query: type, **options: Any) -> tuple[strawberry.Schema, strawberry.Schema]:
    """The same schema through the fast context (counted) and through strawberry's own."""
    config = StrawberryConfig(scalar_map=SCALARS)
    return tuple(  # type: ignore[return-value]
        strawberry.Schema(query=query, config=config, execution_context_class=context, **options)
        for context in (Counted, StrawberryGraphQLCoreExecutionContext)
    )


FAST, PLAIN = _pair(Query, types=[Pet])


class Shouting(SchemaExtension):
    """Wraps every resolver: the fast path must leave all of them to graphql-core."""

    def resolve(self, _next: Any, root: Any, info: strawberry.Info, *args: Any, **kwargs: Any):
        value = _next(root, info, *args, **kwargs)
        return value.upper() if isinstance(value, str) else value


def _errors(result: Any) -> list[tuple[str, Any, Any]]:
    """In their order: that is part of the answer too."""
    return [
        (e.message, e.path, [(loc.line, loc.column) for loc in e.locations or []])
        for e in result.errors or []
    ]


async def _same(
    query: str, schemas: tuple[strawberry.Schema, strawberry.Schema] = (FAST, PLAIN)
) -> tuple[int, int]:
    """Both answers equal; how many objects the fast path took and handed back."""
    Counted.taken = Counted.handed_back = 0
    fast = await schemas[0].execute(query)
    counts = (Counted.taken, Counted.handed_back)
    plain = await schemas[1].execute(query)
    assert fast.data == plain.data
    assert _errors(fast) == _errors(plain)
    assert fast.data is not None or fast.errors[0].path  # an answer, not a rejected query
    return counts


async def _same_and_no_coroutine_dropped(
    query: str, schemas: tuple[strawberry.Schema, strawberry.Schema]
) -> tuple[int, int]:
    """`_same`, and no coroutine left un-awaited by either (it warns when collected)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        counts = await _same(query, schemas)
        gc.collect()
    assert [str(w.message) for w in caught if w.category is RuntimeWarning] == []
    return counts


PLAIN_FIELDS = "name count ratio flag ident color amount at note doubled maybe static"


@pytest.mark.parametrize(
    ("query", "taken", "handed_back"),
    [
        # Plain reads, basic fields and self-only methods, every leaf type: all taken.
        (f"{{ items {{ {PLAIN_FIELDS} }} }}", 6, 0),
        ("{ items { __typename a: name b: name n: count } one { __typename ident } }", 7, 0),
        ("{ items { ... on Item { name } ...F } } fragment F on Item { count color }", 6, 0),
        # @skip/@include are applied before: what is left has directives, so it is handed on.
        ("{ items { name count @include(if: true) note @skip(if: true) } }", 0, 0),
        # Anything strawberry does more for is graphql-core's: info, arguments, async,
        # permissions, extensions, lists of leaves.
        ("{ items { name withInfo } }", 0, 0),
        ("{ items { name withArg(times: 2) } }", 0, 0),
        ("{ items { name later } }", 0, 0),
        ("{ items { name secret } }", 0, 0),
        ("{ items { name shout } }", 0, 0),
        ("{ items { name colors } }", 0, 0),
        # Values graphql-core would not pass: handed back, and graphql-core reports them.
        ("{ odd { name strict } }", 4, 2),  # null in a non-null field (String takes 7)
        ("{ odd { name number } }", 1, 4),  # "raw", null and "x" are no Int
        ("{ odd { name boom } }", 0, 5),
        ("{ odd { name softBoom } }", 0, 5),
        ("{ odd { name returnedError } }", 0, 5),
        ("{ strictItems { name strict } }", 2, 2),  # the list itself becomes null
        # A scalar that would print anything: an exception returned, a value it makes
        # nothing of, and an awaitable are still graphql-core's.
        ("{ loose { name value } }", 4, 3),
        ("{ loose { name computed } }", 4, 3),
        ("{ pending { name value } }", 0, 2),
        # Lists: a null item where one may be; where none may, and an item that is no object
        # of the union, graphql-core answers (the first item is tried in the list, then again).
        ("{ holes { name } }", 2, 0),
        ("{ missing { name } }", 2, 0),
        ("{ wrong { ... on Item { name } } }", 2, 0),
        # A directive on the list field: its objects are still taken one by one.
        ("{ items @include(if: true) { name } }", 6, 0),
        # Interfaces: strawberry checks each object's type (is_type_of), graphql-core's step.
        ("{ pets { __typename name ... on Pet { legs } } }", 2, 0),
        # Unions: each runtime type has its own selection.
        (
            "{ mixed { __typename ... on Item { name count } ... on Other { code } } }",
            4,
            0,
        ),
        # An object field in the selection: the parent is graphql-core's, the child is taken,
        # and so are the Items, with nothing selected on them (the first one twice: the list
        # is tried whole, and handed on at the first Other).
        ("{ mixed { ... on Other { code child { name } } } }", 4, 0),
    ],
)
async def test_answers_are_those_of_graphql_core(query, taken, handed_back):
    assert await _same(query) == (taken, handed_back)


async def test_a_schema_extension_that_wraps_resolvers_turns_the_fast_path_off():
    schemas = _pair(Query, extensions=[Shouting])
    assert await _same(f"{{ items {{ {PLAIN_FIELDS} }} }}", schemas) == (0, 0)


async def test_random_selections_answer_as_graphql_core():
    """Random selections of the fields above, in random order and with aliases."""
    fields = [*PLAIN_FIELDS.split(), "strict", "number", "boom", "softBoom", "withInfo", "shout"]
    rng = random.Random(20261202)
    taken_total = 0
    for _ in range(150):
        chosen = rng.sample(fields, rng.randint(1, 6))
        selection = " ".join(
            f"a{n}: {f}" if rng.random() < 0.3 else f for n, f in enumerate(chosen)
        )
        root = rng.choice(["items", "odd", "strictItems", "one"])
        taken, _ = await _same(f"{{ {root} {{ {selection} }} }}")
        taken_total += taken
    assert taken_total > 100  # the fast path did answer part of them


async def test_the_served_schema_completes_plain_objects_itself():
    assert issubclass(tally_schema.execution_context_class, FastOutputExecutionContext)


class Cents(StrawberryField):
    """A field class of its own that reads differently (the strawberry-django pattern)."""

    def get_result(self, source: Any, info: Any, args: Any, kwargs: Any) -> Any:
        return super().get_result(source, info, args, kwargs) * 100


@strawberry.type
class Money:
    amount: int = Cents()
    units: int = 0


@strawberry.interface
class Node:
    name: str

    @classmethod
    async def resolve_type(cls, obj: Any, info: Any, type_: Any) -> str:
        return "Leaf"


@strawberry.type
class Leaf(Node):
    pass


@strawberry.type
class OtherQuery:
    @strawberry.field
    def money(self) -> list[Money]:
        return [Money(amount=3, units=3)]

    @strawberry.field
    def nodes(self) -> list[Node]:
        return [Leaf(name="a"), Leaf(name="b")]


async def test_field_classes_of_their_own_and_async_type_resolvers_are_graphql_cores():
    schemas = _pair(OtherQuery, types=[Leaf])
    assert await _same("{ money { amount units } }", schemas) == (0, 0)
    assert await _same_and_no_coroutine_dropped("{ nodes { name } }", schemas) == (2, 0)


async def _named(text: str) -> str:
    return text


@strawberry.interface
class Stored:
    name: str

    @classmethod
    def resolve_type(cls, obj: Any, info: Any, type_: Any) -> Any:
        return obj.kind  # the same awaitable each time it is asked: a read of the object


@strawberry.type
class StoredLeaf(Stored):
    kind: strawberry.Private[Any] = None


@strawberry.interface
class Shape:
    name: str


@strawberry.type
class Square(Shape):
    @classmethod
    async def is_type_of(cls, obj: Any, info: Any) -> bool:
        return True


class Row:
    """Not a Shape: strawberry leaves it to graphql-core's default type resolver."""

    def __init__(self, name: str) -> None:
        self.name = name


@strawberry.type
class AwaitingQuery:
    @strawberry.field
    def stored(self) -> list[Stored]:
        return [StoredLeaf(name="a", kind=_named("StoredLeaf"))]

    @strawberry.field
    def shapes(self) -> list[Shape]:
        return [Row("a"), Row("b")]  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("query", "taken"), [("{ stored { name } }", 1), ("{ shapes { name } }", 2)]
)
async def test_type_resolvers_that_answer_with_awaitables_are_graphql_cores(query, taken):
    """Found in review: an interface's type resolver may answer with an awaitable, even one it
    keeps. The list path never asks one (only strawberry's unions, which answer a name)."""
    schemas = _pair(AwaitingQuery, types=[StoredLeaf, Square])
    assert await _same_and_no_coroutine_dropped(query, schemas) == (taken, 0)
