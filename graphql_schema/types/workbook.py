"""Workbooks, their tables and spend limits."""

from __future__ import annotations

import decimal
from datetime import datetime

import strawberry

from app import models, validation
from app.units import units_to_credits
from app.workspaces.workbooks import MAX_PAGE
from graphql_schema.context import Info


@strawberry.type(description="A table of a workbook, as named by the usage recorded in it.")
class Table:
    id: str


@strawberry.type
class Workbook:
    row: strawberry.Private[models.Workbook]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field(description="Data Credit limit (R11); null when none is set.")
    def spend_limit(self) -> decimal.Decimal | None:
        limit = self.row.spend_limit
        return None if limit is None else units_to_credits(limit)

    @strawberry.field(description="Data Credits spent since the limit was set; 0 without one.")
    def spent(self) -> decimal.Decimal:
        return units_to_credits(self.row.spent)

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field(
        description="The tables its usage names, sorted; at most `first` (1 to 1,000)."
    )
    async def tables(self, info: Info, first: int = MAX_PAGE) -> list[Table]:
        validation.whole_number(first, "first", 1, MAX_PAGE)
        tables = await info.context.loaders.tables.load(self.row.id)
        return [Table(id=t) for t in tables[:first]]
