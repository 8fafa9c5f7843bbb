"""`Decimal` as a JSON string (API.md). A JSON number is refused: floats never touch amounts.

A bad value is a `GraphQLError`, not a `ValueError`: graphql-core keeps any other exception as
the error's cause, and a literal written into the document then looks like a bug of ours
(INTERNAL_SERVER_ERROR) instead of the client's input (INVALID_INPUT).
"""

from __future__ import annotations

import decimal
import re
from typing import Any

import strawberry
from graphql import GraphQLError, ValueNode, print_ast, value_from_ast_untyped

_DECIMAL = re.compile(r"^-?\d{1,18}(\.\d{1,18})?$")


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


def _parse_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> decimal.Decimal:
    """A value written into the document, pointed at by the error."""
    try:
        return _parse(value_from_ast_untyped(node, variables))
    except GraphQLError as error:
        message = f"Expected value of type 'Decimal', found {print_ast(node)}: {error.message}"
        raise GraphQLError(message, node) from None


Decimal = strawberry.scalar(
    name="Decimal",
    description='An exact decimal amount, serialized as a string ("0.5").',
    serialize=_serialize,
    parse_value=_parse,
    parse_literal=_parse_literal,
)

SCALAR_MAP = {decimal.Decimal: Decimal}
