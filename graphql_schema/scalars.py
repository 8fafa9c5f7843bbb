"""`Decimal` as a JSON string (API.md). A JSON number is refused: floats never touch amounts.
`DateTime` as ISO 8601 with a zone, validated once here for every argument (app.validation).

A bad value is a `GraphQLError`, not a `ValueError`: graphql-core keeps any other exception as
the error's cause, and a literal written into the document then looks like a bug of ours
(INTERNAL_SERVER_ERROR) instead of the client's input (INVALID_INPUT).
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import strawberry
from graphql import GraphQLError, ValueNode, print_ast, value_from_ast_untyped
from strawberry.types.scalar import ScalarDefinition

from app.errors import InvalidInput
from app.validation import parse_instant

# ASCII digits only: \d would take "١٢", which Decimal() reads as 12.
_DECIMAL = re.compile(r"^-?[0-9]{1,18}(\.[0-9]{1,18})?$")


def _serialize(value: decimal.Decimal) -> str:
    return format(value, "f")


def _parse(value: object) -> decimal.Decimal:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise GraphQLError('Decimal amounts are strings such as "12.5", not JSON numbers')
    if not isinstance(value, str):
        raise GraphQLError(f'Decimal amounts are strings such as "12.5"; got {value!r}')
    if not _DECIMAL.match(value.strip()):
        raise GraphQLError(f'{value!r} is not a decimal amount such as "12.5"')
    return decimal.Decimal(value.strip())


def _literal_parser(name: str, parse: Callable[[object], Any]) -> Callable[..., Any]:
    def parse_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> Any:
        """A value written into the document, pointed at by the error."""
        try:
            return parse(value_from_ast_untyped(node, variables))
        except GraphQLError as error:
            message = f"Expected value of type '{name}', found {print_ast(node)}: {error.message}"
            raise GraphQLError(message, node) from None

    return parse_literal


def _parse_instant(value: object) -> datetime:
    if not isinstance(value, str):
        raise GraphQLError(
            f'DateTime values are strings such as "2025-01-01T00:00Z"; got {value!r}'
        )
    try:
        return parse_instant(value, "DateTime")
    except InvalidInput as error:
        raise GraphQLError(error.message) from None


Decimal = strawberry.scalar(
    name="Decimal",
    description='An exact decimal amount, serialized as a string ("0.5").',
    serialize=_serialize,
    parse_value=_parse,
    parse_literal=_literal_parser("Decimal", _parse),
)

DateTime = strawberry.scalar(
    name="DateTime",
    description="An instant in ISO 8601 with a zone (2025-01-01T00:00:00+00:00), 1970 to 2199.",
    serialize=datetime.isoformat,
    parse_value=_parse_instant,
    parse_literal=_literal_parser("DateTime", _parse_instant),
)

SCALAR_MAP: dict[object, ScalarDefinition] = {
    decimal.Decimal: Decimal,
    datetime: DateTime,
}
