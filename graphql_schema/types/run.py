"""Runs (R6, R23) and batches of usage reports."""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import get_object_definition
from strawberry.types.arguments import InputContext

from app import models
from app.units import units_to_credits
from graphql_schema.enums import RunStatus
from graphql_schema.types.usage import RecordUsageInput


def _credits(units: int | None) -> decimal.Decimal | None:
    return None if units is None else units_to_credits(units)


@strawberry.type(description="An enrichment or AI run: its budget, hold and spend.")
class Run:
    row: strawberry.Private[models.Run]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def workbook_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.workbook_id))

    @strawberry.field
    def table_id(self) -> str | None:
        return self.row.table_id

    @strawberry.field
    def name(self) -> str | None:
        return self.row.name

    @strawberry.field
    def status(self) -> RunStatus:
        return self.row.status  # type: ignore[return-value]  # a str: looked up by value

    @strawberry.field(description="Data Credits the run may spend in all (R6); null: no budget.")
    def budget(self) -> decimal.Decimal | None:
        return _credits(self.row.budget)

    @strawberry.field(description="Data Credits charged to the run, net of refunds.")
    def spent(self) -> decimal.Decimal:
        return units_to_credits(self.row.spent)

    @strawberry.field
    def budget_remaining(self) -> decimal.Decimal | None:
        budget = self.row.budget
        return None if budget is None else units_to_credits(budget - self.row.spent)

    @strawberry.field
    def actions(self) -> int:
        return self.row.actions

    @strawberry.field
    def results(self) -> int:
        return self.row.results

    @strawberry.field(description="Usage reports charged to the run.")
    def charges(self) -> int:
        return self.row.charge_count

    @strawberry.field(description="Data Credits still held for the run.")
    def held(self) -> decimal.Decimal:
        return units_to_credits(self.row.hold)

    @strawberry.field(description="Data Credits held when the run started.")
    def hold_placed(self) -> decimal.Decimal:
        return units_to_credits(self.row.hold_placed)

    @strawberry.field(description="When the hold is released if the run is left alone.")
    def hold_expires_at(self) -> datetime | None:
        return self.row.hold_expires_at

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field
    def last_charge_at(self) -> datetime | None:
        return self.row.last_charge_at

    @strawberry.field(description="When it was stopped or finished (R23).")
    def ended_at(self) -> datetime | None:
        return self.row.ended_at


@strawberry.input
class StartRunInput:
    workbook_id: strawberry.ID
    idempotency_key: str
    table_id: str | None = None
    name: str | None = None
    budget: decimal.Decimal | None = strawberry.field(
        default=None, description="R6: the most Data Credits the run may spend."
    )
    hold: decimal.Decimal | None = strawberry.field(
        default=None,
        description="Data Credits to set aside now (e.g. estimateCost's dataCredits).",
    )
    hold_minutes: int = strawberry.field(
        default=60, description="The hold is released after this long without a charge."
    )


@strawberry.input
class RecordUsageBatchInput:
    items: list[RecordUsageInput] = strawberry.field(
        description="1 to 1,000 reports, each with its own idempotency key."
    )


def _batch_from_input(
    target: type, value: Mapping[str, Any], context: InputContext
) -> RecordUsageBatchInput:
    """Each item straight through RecordUsageInput's own `from_input` (which reads nothing of
    the context), instead of strawberry's per-value dispatch and a context built per item."""
    item = get_object_definition(RecordUsageInput, strict=True).from_input
    assert item is not None
    return target(items=[item(RecordUsageInput, raw, context) for raw in value["items"]])


get_object_definition(RecordUsageBatchInput, strict=True).from_input = _batch_from_input
