"""Usage history (R24): rows grouped by any of day, cycle, workbook, table, provider, kind;
balances at a past instant (R38)."""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import strawberry
from strawberry.types.nodes import SelectedField

from app.catalog import PlanSpec
from app.history import balance
from app.history import rules as history
from app.units import units_to_credits
from graphql_schema.enums import UsageKind
from graphql_schema.types.catalog import Plan

strawberry.enum(
    history.UsageDimension,
    name="UsageDimension",
    description="What usage history groups by: the UTC day, the billing cycle, the workbook,"
    " the table, the provider (the model name for AI) or the kind of usage.",
)
UsageDimension = history.UsageDimension  # the same class, registered above


OWN_KEY_FIELDS = frozenset({"ownKeyResults", "ownKeySavings"})


def selected(fields: Sequence[Any]) -> set[str]:
    """The names of the fields a query selects under `fields`, through fragments."""
    names: set[str] = set()
    for field in fields:
        if isinstance(field, SelectedField):
            names.add(field.name)
        names |= selected(getattr(field, "selections", ()))
    return names


@strawberry.type(
    description="Usage summed over one group: the keys it was grouped by are set, the others"
    " are null. Own-key usage counts Actions only, free operations count zero, refunds are"
    " netted on the day they happened (R3, R5, R22, R24)."
)
class UsageRow:
    day: date | None = strawberry.field(description="The UTC date.")
    cycle_start: datetime | None = strawberry.field(
        description="The start of the billing cycle the usage counted in."
    )
    workbook_id: strawberry.ID | None
    workbook_name: str | None
    table_id: str | None
    provider: str | None = strawberry.field(
        description="The provider; for AI usage, the model name."
    )
    kind: UsageKind | None
    actions: int
    data_credits: decimal.Decimal = strawberry.field(description="Net of refunds.")
    results: int
    own_key_results: int = strawberry.field(
        description="Of `results`, those delivered with the customer's own provider or AI key"
        " (R5: no Data Credits charged)."
    )
    own_key_savings: decimal.Decimal = strawberry.field(
        description="What those own-key results would have cost in Data Credits at the catalog"
        " price in force when each was recorded (R40); 0 for what the catalog does not price."
        " Like `results`, a later refund does not change it."
    )

    @classmethod
    def of(cls, row: history.UsageRow) -> UsageRow:
        return cls(
            day=row.day,
            cycle_start=row.cycle_start,
            workbook_id=None if row.workbook_id is None else strawberry.ID(str(row.workbook_id)),
            workbook_name=row.workbook_name,
            table_id=row.table_id,
            provider=row.provider,
            kind=None if row.kind is None else UsageKind(row.kind),
            actions=row.actions,
            data_credits=units_to_credits(row.credits),
            results=row.results,
            own_key_results=row.own_key_results,
            own_key_savings=units_to_credits(row.own_key_savings),
        )


@strawberry.type(
    description="R38: the meters and the plan at an instant, read from the ledger and the plan"
    " history; a change made exactly at `at` counts."
)
class BalanceSnapshot:
    at: datetime
    plan: Plan
    actions_used: int
    actions_capacity: int = strawberry.field(description="The Actions capacity of the month then.")
    data_credits: decimal.Decimal = strawberry.field(
        description="The Data Credit balance, held credits included."
    )
    held: decimal.Decimal = strawberry.field(description="Set aside for runs then (R6).")
    available: decimal.Decimal = strawberry.field(description="dataCredits - held.")

    @classmethod
    def of(cls, snapshot: balance.BalanceSnapshot, plan: PlanSpec) -> BalanceSnapshot:
        return cls(
            at=snapshot.at,
            plan=Plan.of(plan),
            actions_used=snapshot.actions_used,
            actions_capacity=snapshot.actions_capacity,
            data_credits=units_to_credits(snapshot.credits),
            held=units_to_credits(snapshot.held),
            available=units_to_credits(snapshot.available),
        )
