"""The ledger as a Relay-style connection (R24)."""

from __future__ import annotations

import decimal
from datetime import datetime

import strawberry

from app import models
from app.kinds import Meter as DomainMeter
from app.ledger import encode_cursor
from app.units import units_to_credits
from graphql_schema.enums import EntryType, Meter


def meter_amount(meter: str, amount: int) -> decimal.Decimal:
    """Actions are whole numbers; Data Credits are stored in ten-thousandths."""
    if meter == DomainMeter.ACTIONS.value:
        return decimal.Decimal(amount)
    return units_to_credits(amount)


@strawberry.type
class LedgerEntry:
    row: strawberry.Private[models.LedgerEntry]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def entry_type(self) -> EntryType:
        return self.row.entry_type  # type: ignore[return-value]  # a str: looked up by value

    @strawberry.field
    def meter(self) -> Meter:
        return self.row.meter  # type: ignore[return-value]  # a str: looked up by value

    @strawberry.field(description="Signed: negative takes from the balance.")
    def amount(self) -> decimal.Decimal:
        return meter_amount(self.row.meter, self.row.amount)

    @strawberry.field(description="Data Credits: the balance. Actions: those left this month.")
    def balance_after(self) -> decimal.Decimal:
        return meter_amount(self.row.meter, self.row.balance_after)

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field
    def workbook_id(self) -> strawberry.ID | None:
        value = self.row.workbook_id
        return None if value is None else strawberry.ID(str(value))

    @strawberry.field
    def charge_id(self) -> strawberry.ID | None:
        value = self.row.charge_id
        return None if value is None else strawberry.ID(str(value))

    @strawberry.field
    def refund_id(self) -> strawberry.ID | None:
        value = self.row.refund_id
        return None if value is None else strawberry.ID(str(value))


@strawberry.type
class LedgerEdge:
    cursor: str
    node: LedgerEntry


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class LedgerConnection:
    edges: list[LedgerEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, entries: list[models.LedgerEntry], has_next_page: bool) -> LedgerConnection:
        edges = [LedgerEdge(cursor=encode_cursor(e.id), node=LedgerEntry(row=e)) for e in entries]
        end = edges[-1].cursor if edges else None
        return cls(edges=edges, page_info=PageInfo(has_next_page=has_next_page, end_cursor=end))
