"""`Decimal` as a JSON string (API.md). A JSON number is refused: floats never touch amounts."""

from __future__ import annotations

import decimal
import re

import strawberry

_DECIMAL = re.compile(r"^-?\d{1,18}(\.\d{1,18})?$")


def _serialize(value: decimal.Decimal) -> str:
    return format(value, "f")


def _parse(value: object) -> decimal.Decimal:
    if not isinstance(value, str):
        raise ValueError('Decimal amounts are strings such as "12.5", not JSON numbers')
    if not _DECIMAL.match(value.strip()):
        raise ValueError(f'{value!r} is not a decimal amount such as "12.5"')
    return decimal.Decimal(value.strip())


Decimal = strawberry.scalar(
    name="Decimal",
    description='An exact decimal amount, serialized as a string ("0.5").',
    serialize=_serialize,
    parse_value=_parse,
)

SCALAR_MAP = {decimal.Decimal: Decimal}
